"""Engagement Klaviyo recorded (seed 004): pulled through Klaviyo's events API into the store
(``pull``), ranked most engaged first by the plan's definition (``ranking``) and tested by
scenario conditions; the dry run shows what was pulled and what the day's Klaviyo work costs
(``notes``)."""
