"""Costs: :mod:`~cfgateway.costs.catalog` (model facts and dated prices, layer 2),
:mod:`~cfgateway.costs.pricing` (usage -> Decimal), :mod:`~cfgateway.costs.ledger` (usage records in
memory, SQLite or Redis), :mod:`~cfgateway.costs.budget` (limits and alerts),
:mod:`~cfgateway.costs.tally` (the adapters' cost callbacks' figures) and
:mod:`~cfgateway.costs.reports` (spend reports)."""
