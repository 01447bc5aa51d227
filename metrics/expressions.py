"""The one small expression language of the config: metric expressions and computed fact columns.

Parsed with Python's ``ast`` and admitted node by node, so nothing but names,
numbers, ``+ - * /``, unary minus, parentheses and (for columns) plain function
calls gets through: no attributes, strings, comparisons or keyword arguments.
Leaf module: the loader, validation and the compiler all read the same tree.
"""

from __future__ import annotations

import ast
from functools import lru_cache

OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, *OPERATORS, ast.USub, ast.UAdd)


@lru_cache(maxsize=1024)
def parse(expression: str, *, what: str = "metric names", calls: bool = False) -> ast.expr:
    """The checked tree of an expression; raises ``ValueError`` saying what is not allowed.

    Cached: the compiler reads the same few expressions on every request, and
    nobody changes a tree once it is parsed.

    ``calls`` admits ``name(argument, ...)``; which functions exist, and their
    arity, is for the caller to judge, so it can report them as their own issues.
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"is not an arithmetic expression ({exc.msg})") from None
    for node in ast.walk(tree):
        number = (
            isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        )
        call = calls and isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords
        starred = isinstance(node, ast.Call) and any(isinstance(argument, ast.Starred) for argument in node.args)
        if (isinstance(node, ast.Constant) and not number) or starred or not (call or isinstance(node, _NODES)):
            functions = ", function calls" if calls else ""
            raise ValueError(
                f"may only combine {what} and numbers with + - * /{functions} and parentheses, "
                f"not {ast.unparse(node)!r}"
            )
    return tree.body


def names(node: ast.expr) -> list[str]:
    """The names an expression reads, in order (function names are not read)."""
    if isinstance(node, ast.Name):
        return [node.id]
    children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
    return [name for child in children if isinstance(child, ast.expr) for name in names(child)]
