"""The API's routers, one per resource; each is thin: parse, call one service, render."""
