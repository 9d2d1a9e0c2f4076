"""Connection health: JSON ping, connection status, and the HTTP health check."""

from _local import riptide_server

from riptide_sync import RipTideClient

with riptide_server() as (base_url, _urls):
    with RipTideClient(base_url) as client:
        ping = client.streaming.ping_websocket()
        print(f"ping: success={ping['success']} latency={ping['latency_ms']} ms session={ping['session_id']}")
        status = client.streaming.get_websocket_status()
        print(f"status: healthy={status['is_healthy']} messages={status['message_count']} "
              f"backpressure={status['backpressure_count']}")
        health = client.health()
        print(f"health: {health.status} (version {health.version}, up {health.uptime} s)")
