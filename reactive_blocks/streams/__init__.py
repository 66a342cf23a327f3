"""Live streams: change events become re-rendered blocks sent as Server-Sent Events."""
