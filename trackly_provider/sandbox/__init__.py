"""A local Trackly-compatible server for demos, tests and trying a DAG without a real key."""

SANDBOX_API_KEY = "trk_sandboxDemoKey000000000000000000"
UNKNOWN_ID_PREFIX = "unknown"
CONTACTLESS_ID_PREFIX = "nocontact"  # a message whose contact was deleted: its revenue is contact_not_found

# The account's two sending lists (GET /api/v2/lists): the values a contact's list_number may take.
SANDBOX_LIST_NUMBER = "+18005550100"  # list id 1; has an active Welcome Journey unless reconfigured
SECOND_LIST_NUMBER = "+18005550101"  # list id 2; no journey
# Test numbers for POST /api/v2/contacts/bulk (the sandbox's own, not the vendor's):
NOT_SENDABLE_PREFIX = "+1555"  # a contact whose number starts so is rejected not_sendable (a VOIP line)
VALIDATION_FAILS_PREFIX = "+1999"  # with use_validation on a billed account: validation_failed
