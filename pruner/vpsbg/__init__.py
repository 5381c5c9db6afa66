"""The VPSBG API: the HTTP client, the token, and the parsing of what the API lists.

Every request to the API goes through `client.ApiClient`; what it answers becomes engine values
in `listing` (item by item, fail closed) and `fetch` (a whole pass's listing).
"""
