"""Per-mailbox-provider ramps: customers grouped by who hosts their mailbox (Gmail, Microsoft,
Yahoo, Apple, a plan's own groups, other), each group capped per day and guarded on its own."""
