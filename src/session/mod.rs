//! One task per WebSocket connection: subscriptions, commands, pings, bounded outbound queue.
