"""Errors of the physical layer, each carrying what a person needs to fix it.

WarehouseError
├── UnsupportedURL        a source or warehouse URL of a kind we cannot use
├── SourceUnavailable     the source database cannot be reached or opened
├── WarehouseUnavailable  the warehouse cannot be reached, opened or created
├── SourceContractError   tables or columns of sources.md are missing
├── BadSourceValue        a value that does not parse (table, key, column, value)
├── HashKeyError          the user-hash key is missing or differs from the warehouse's
└── LockTimeout           another ETL run held the warehouse for too long
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base of every error the warehouse layer raises on purpose."""


class UnsupportedURL(WarehouseError):
    def __init__(self, url: str, role: str, supported: str, *, reason: str = "") -> None:
        because = f" ({reason})" if reason else ""
        super().__init__(f"{role} URL {url!r} is not supported{because}; use {supported}.")


class SourceUnavailable(WarehouseError):
    pass


class WarehouseUnavailable(WarehouseError):
    pass


class SourceContractError(WarehouseError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        listed = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"the source does not match sources.md:\n{listed}")


class BadSourceValue(WarehouseError):
    def __init__(self, table: str, key: object, column: str, value: object, expected: str) -> None:
        self.table, self.key, self.column, self.value = table, key, column, value
        super().__init__(
            f"{table} row {key!r}: column {column} holds {value!r}, which is not {expected}; "
            "fix the row in the source and run the ETL again (nothing was loaded)."
        )


class HashKeyError(WarehouseError):
    pass


class LockTimeout(WarehouseError):
    pass
