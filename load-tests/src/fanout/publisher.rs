//! What causes the updates: events sent to statewire over one WebSocket (`send-event`
//! commands, each answered once the commit is durable), or publish messages to the bare server.

use anyhow::Context as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::{INSTANCE, MACHINE};

/// Commands in flight at once during a burst (the server runs up to 16 per connection).
const WINDOW: usize = 16;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub enum Publisher {
    Statewire { ws: Socket, sent: u64 },
    Bare { ws: Socket, sent: u64 },
}

impl Publisher {
    pub async fn statewire(url: &str) -> anyhow::Result<Publisher> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Publisher::Statewire { ws, sent: 0 })
    }

    pub async fn bare(url: &str) -> anyhow::Result<Publisher> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Publisher::Bare { ws, sent: 0 })
    }

    /// Causes one update and returns once the server took it (statewire: the commit is
    /// durable and answered).
    pub async fn one(&mut self, seq: u64) -> anyhow::Result<()> {
        self.send(seq).await?;
        if let Publisher::Statewire { ws, .. } = self {
            await_replies(ws, 1).await?;
        }
        Ok(())
    }

    /// Causes `count` updates, `first_seq` onwards, as fast as the server takes them.
    pub async fn burst(&mut self, first_seq: u64, count: u64) -> anyhow::Result<()> {
        let mut in_flight = 0;
        for seq in first_seq..first_seq + count {
            self.send(seq).await?;
            in_flight += 1;
            if let Publisher::Statewire { ws, .. } = self {
                if in_flight == WINDOW {
                    await_replies(ws, 1).await?;
                    in_flight -= 1;
                }
            }
        }
        if let Publisher::Statewire { ws, .. } = self {
            await_replies(ws, in_flight).await?;
        }
        Ok(())
    }

    async fn send(&mut self, seq: u64) -> anyhow::Result<()> {
        match self {
            Publisher::Statewire { ws, sent } => {
                *sent += 1;
                let command = json!({"type": "send-event", "requestId": sent.to_string(),
                    "machineName": MACHINE, "machineInstanceName": INSTANCE, "event": "toggle"});
                ws.send(Message::Text(command.to_string().into())).await?;
            }
            Publisher::Bare { ws, sent } => {
                *sent += 1;
                let publish = json!({"type": "publish", "seq": seq});
                ws.send(Message::Text(publish.to_string().into())).await?;
            }
        }
        Ok(())
    }
}

async fn await_replies(ws: &mut Socket, mut count: usize) -> anyhow::Result<()> {
    while count > 0 {
        match ws
            .next()
            .await
            .context("the publisher's connection ended")??
        {
            Message::Text(text) if text.contains("\"reply\"") => count -= 1,
            Message::Text(text) => anyhow::bail!("event refused: {text}"),
            _ => {}
        }
    }
    Ok(())
}
