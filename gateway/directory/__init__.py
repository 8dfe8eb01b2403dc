"""The people the gateway knows: contacts (young people and others) and staff, read from CSV,
and the read-only ``DirectoryView`` the policy checks query."""
