"""How the hook reaches Trackly: TLS trust, proxies, a deadline per request, answers read within bounds."""
