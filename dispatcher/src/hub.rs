//! Fans `pgworld_stream` pings (each stream's opaque channel, from `stream_state`) out to the
//! live stream reads of this replica. A reader subscribes before reading, so a write committed in between is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use tokio::sync::Notify;

#[derive(Default)]
pub struct StreamHub {
    readers: Mutex<HashMap<String, Vec<Weak<Notify>>>>,
}

impl StreamHub {
    /// A wake-up for the stream whose pings carry `key`; dropping it unsubscribes.
    pub fn subscribe(&self, key: String) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        let list = readers.entry(key).or_default();
        list.retain(|w| w.strong_count() > 0);
        list.push(Arc::downgrade(&n));
        n
    }

    pub fn ping(&self, key: &str) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = readers.get_mut(key) {
            list.retain(|w| match w.upgrade() {
                Some(n) => {
                    n.notify_one();
                    true
                }
                None => false,
            });
            if list.is_empty() {
                readers.remove(key);
            }
        }
    }

    /// After a lost LISTEN connection every reader re-reads: pings may have been missed.
    pub fn ping_all(&self) {
        let readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        for n in readers.values().flatten().filter_map(Weak::upgrade) {
            n.notify_one();
        }
    }
}
