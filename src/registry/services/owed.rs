//! Owed error events: a service whose marker says it started, but which does not run here any
//! more (the window closed, the guest was lost, the process restarted), gets its error event
//! delivered through the normal path before the instance's next event.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::ids::InstanceKey;
use crate::metrics::services as metrics;
use crate::registry::write::effects_only_commit;
use crate::registry::{Inner, RegistryError};
use crate::runtime::MachineCode;
use crate::store::{InstanceRecord, PageRequest, ServiceMarker, ServiceState};

/// The message of the error event of a service that was interrupted.
pub const INTERRUPTED_MESSAGE: &str = "service interrupted";

impl Inner {
    /// The first marker of `record` owed an error event: `Interrupted`, or `Started` while no
    /// runner of this process holds the instance's services.
    fn owed_marker(&self, key: &InstanceKey, record: &InstanceRecord) -> Option<ServiceMarker> {
        let live = self.services.live(key).is_some();
        record
            .effects
            .services
            .iter()
            .find(|s| s.state == ServiceState::Interrupted || !live)
            .cloned()
    }

    /// Delivers every owed error event of `key`, each as its own step, clearing its marker.
    /// When the machine cannot take the event, the marker is cleared without a transition.
    pub(in crate::registry) async fn pay_owed(
        self: &Arc<Self>,
        key: &InstanceKey,
    ) -> Result<(), RegistryError> {
        loop {
            let record = match self.read(key).await {
                Ok(record) => record,
                Err(RegistryError::InstanceNotFound(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            let Some(marker) = self.owed_marker(key, &record) else {
                return Ok(());
            };
            let code = self.code.get(&key.machine, &record.machine_version).await?;
            let event = error_event(self.xstate_major(&code).await, &marker.id);
            let (id, event) = (&marker.id, &event);
            self.write_existing(key, |current| async move {
                let Some(owed) = self.owed_marker(key, &current).filter(|m| &m.id == id) else {
                    return Ok(None);
                };
                let mut effects = current.effects.clone();
                effects.remove_service(&owed.id);
                match self
                    .machine_step(key, &current, effects.clone(), event)
                    .await
                {
                    Ok(plan) => Ok(Some(plan)),
                    Err(RegistryError::Runtime(e)) => {
                        tracing::warn!(instance = %key, service = %owed.id, error = %e,
                            "the owed error event failed; its marker is cleared");
                        Ok(Some(effects_only_commit(key, &current, effects)))
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
            if marker.state == ServiceState::Started {
                metrics::interrupted(1);
            }
            tracing::info!(instance = %key, service = %marker.id, "owed error event delivered");
        }
    }

    /// 4 or 5; asked of the module once per code.
    async fn xstate_major(&self, code: &MachineCode) -> u8 {
        if let Some(major) = self.services.majors.get(&code.hash) {
            return *major;
        }
        let major = match self.runtime.check(code).await {
            Ok(info) => info.xstate_major.unwrap_or(4),
            Err(_) => 4,
        };
        self.services.majors.insert(code.hash.clone(), major);
        major
    }

    /// At start: every instance with service markers gets its owed error events at once, so
    /// a service cut off by a crash moves its instance on without waiting for a client.
    /// Scans every machine's instances; returns how many instances were settled this way.
    pub(in crate::registry) async fn recover_services(self: &Arc<Self>) -> usize {
        let mut recovered = 0;
        let mut machines = PageRequest::default();
        loop {
            let Ok(page) = self.store.list_machines(&machines).await else {
                return recovered;
            };
            for machine in &page.items {
                recovered += self.recover_machine(&machine.name).await;
            }
            match page.cursor {
                Some(cursor) => machines.cursor = Some(cursor),
                None => return recovered,
            }
        }
    }

    async fn recover_machine(self: &Arc<Self>, machine: &crate::ids::MachineName) -> usize {
        let mut recovered = 0;
        let mut page_request = PageRequest::default();
        loop {
            let Ok(page) = self.store.list_instances(machine, &page_request).await else {
                return recovered;
            };
            for summary in &page.items {
                let Ok(instance) = crate::ids::InstanceName::parse(summary.name.clone()) else {
                    continue;
                };
                let key = InstanceKey::new(machine.clone(), instance);
                let has_markers = matches!(self.store.load_instance(&key).await,
                    Ok(Some(r)) if !r.effects.services.is_empty());
                if has_markers {
                    match self.pay_owed(&key).await {
                        Ok(()) => recovered += 1,
                        Err(e) => {
                            tracing::warn!(instance = %key, error = %e, "owed error events not delivered at start")
                        }
                    }
                }
            }
            match page.cursor {
                Some(cursor) => page_request.cursor = Some(cursor),
                None => return recovered,
            }
        }
    }
}

/// The error event of service `id` that was interrupted, in the shape of XState `major`.
pub fn error_event(major: u8, id: &str) -> Value {
    let error = json!({"name": "Error", "message": INTERRUPTED_MESSAGE});
    if major >= 5 {
        json!({"type": format!("xstate.error.actor.{id}"), "error": error, "actorId": id})
    } else {
        json!({"type": format!("error.platform.{id}"), "data": error})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_errors_take_the_shape_of_each_xstate_major() {
        assert_eq!(
            error_event(4, "hang"),
            json!({"type": "error.platform.hang",
                   "data": {"name": "Error", "message": "service interrupted"}})
        );
        assert_eq!(
            error_event(5, "p1"),
            json!({"type": "xstate.error.actor.p1", "actorId": "p1",
                   "error": {"name": "Error", "message": "service interrupted"}})
        );
    }
}
