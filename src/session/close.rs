//! Why the server closes a connection, and the close code it sends.
//!
//! | code | reason | when |
//! |---|---|---|
//! | 1001 | `going away` | the server shuts down (after in-flight commits were pushed) |
//! | 1002 | `protocol error` | the client broke the WebSocket protocol |
//! | 1003 | `binary frames are not supported` | the client sent a binary frame |
//! | 1009 | `message too big` | a message or frame above the size limit |
//! | 1011 | `internal error` | a bug on the server side |
//! | 4000 | `idle` | nothing received for longer than the ping interval plus grace |
//! | 4001 | `token expired` | the token's `exp` (plus the verification leeway) has passed |
//! | 4008 | `slow consumer` | a write stayed blocked past the stall timeout |

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ShuttingDown,
    Protocol,
    Binary,
    TooBig,
    Internal,
    Idle,
    TokenExpired,
    SlowConsumer,
}

impl CloseReason {
    pub fn code(self) -> u16 {
        match self {
            CloseReason::ShuttingDown => 1001,
            CloseReason::Protocol => 1002,
            CloseReason::Binary => 1003,
            CloseReason::TooBig => 1009,
            CloseReason::Internal => 1011,
            CloseReason::Idle => 4000,
            CloseReason::TokenExpired => 4001,
            CloseReason::SlowConsumer => 4008,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CloseReason::ShuttingDown => "going away",
            CloseReason::Protocol => "protocol error",
            CloseReason::Binary => "binary frames are not supported",
            CloseReason::TooBig => "message too big",
            CloseReason::Internal => "internal error",
            CloseReason::Idle => "idle",
            CloseReason::TokenExpired => "token expired",
            CloseReason::SlowConsumer => "slow consumer",
        }
    }

    pub fn frame(self) -> CloseFrame {
        CloseFrame {
            code: CloseCode::from(self.code()),
            reason: self.text().into(),
        }
    }
}
