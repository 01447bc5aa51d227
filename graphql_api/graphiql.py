"""GraphiQL served from assets in the package: it works with the network unplugged."""

from __future__ import annotations

import json

EXAMPLE_QUERY = """# Welcome to Grace Metrics. Press the play button (or Ctrl-Enter) and pick an operation.
# Fields under `rows` decide what is computed: metrics are aggregated, grouped by
# every selected dimension attribute.

query VerificationsByTierAndDay {
  metrics(
    where: { time: { from: "2025-10-01T00:00:00Z", to: "2026-12-01T00:00:00Z" } }
    orderBy: [{ field: "verificationCount", direction: DESC }]
    limit: 20
  ) {
    rows {
      day: time(grain: DAY)
      tier { name }
      verificationCount
      verificationSuccessRate
      p95VerificationDurationMs
    }
    totalCount
    pageInfo { hasNextPage }
  }
}

query ErrorsPerVerificationByAgentType {
  metrics(orderBy: [{ field: "errorsPerVerification", direction: DESC }]) {
    rows { agent { type } errorCount verificationCount errorsPerVerification }
  }
}

query AgentsWithTheirQueryMetrics {
  agents { name type metrics { queryCount p95QueryLatencyMs queryApprovalRate } }
}

query Catalog {
  catalog { metrics { graphqlName label kind type unit format dimensions } }
}
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Grace Metrics · GraphiQL</title>
  <link rel="stylesheet" href="/static/graphiql.min.css">
  <style>body {{ margin: 0; height: 100vh; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="/static/react.production.min.js"></script>
  <script src="/static/react-dom.production.min.js"></script>
  <script src="/static/graphiql.min.js"></script>
  <script>
    const fetcher = GraphiQL.createFetcher({{ url: window.location.pathname }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{ fetcher, defaultQuery: {query}, defaultEditorToolsVisibility: true }})
    );
  </script>
</body>
</html>
"""


def graphiql_page() -> str:
    return PAGE.format(query=json.dumps(EXAMPLE_QUERY))
