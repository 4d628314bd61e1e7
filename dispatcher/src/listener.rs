//! The one LISTEN connection per replica (spec/queue.md §11, streams.md §8). A queue ping wakes
//! the claim loop; a stream ping wakes that stream's live reads. On a lost connection it
//! reconnects with backoff (1 s → 30 s) and wakes everyone at once, since pings sent while it
//! was away are gone.

use crate::backoff::Backoff;
use crate::hub::StreamHub;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_postgres::{AsyncMessage, NoTls};

pub const CHANNEL: &str = "pgworld_queue";
pub const STREAM_CHANNEL: &str = "pgworld_stream";

pub async fn run(pg: tokio_postgres::Config, wake: Arc<Notify>, hub: Arc<StreamHub>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        let mut listened = false;
        let session = async {
            let (client, mut connection) = pg.connect(NoTls).await?;
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            let statement = format!("LISTEN {CHANNEL}; LISTEN {STREAM_CHANNEL}");
            {
                let listen = client.batch_execute(&statement);
                // The connection must be polled for LISTEN to complete.
                tokio::pin!(listen);
                loop {
                    tokio::select! {
                        r = &mut listen => { r?; break; }
                        m = messages.next() => match m {
                            Some(Ok(_)) => {}
                            Some(Err(e)) => return Err(e),
                            None => return Ok(()),
                        },
                    }
                }
            }
            tracing::info!("listening for queue and stream pings");
            listened = true;
            wake.notify_one();
            hub.ping_all();
            while let Some(m) = messages.next().await {
                if let AsyncMessage::Notification(n) = m? {
                    if n.channel() == STREAM_CHANNEL {
                        hub.ping(n.payload());
                    } else {
                        wake.notify_one();
                    }
                }
            }
            // The client lives as long as the session: dropping it would close the connection.
            drop(client);
            Ok::<(), tokio_postgres::Error>(())
        };
        let result = tokio::select! {
            r = session => r,
            _ = stop.changed() => return,
        };
        if listened {
            backoff.reset();
        }
        let pause = backoff.next_pause();
        match result {
            Ok(()) => tracing::warn!(retry_in = ?pause, "LISTEN connection closed; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %crate::errors::error_chain(&e), retry_in = ?pause, "LISTEN connection failed; reconnecting")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
        wake.notify_one();
        hub.ping_all();
    }
}
