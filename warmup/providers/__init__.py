"""Wire protocols, nothing about plans or days: ``klaviyo`` (lists, profiles, consent over
Klaviyo's REST API), ``smtp`` and ``file`` (email delivery, see ``base``)."""
