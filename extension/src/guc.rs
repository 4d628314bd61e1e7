//! Every setting the extension defines (spec/README.md, "Database settings").

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static APP_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ADMIN: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static MAX_SPEC_VERSION: GucSetting<i32> = GucSetting::<i32>::new(7);
pub static DEFAULT_SPEC_VERSION: GucSetting<i32> = GucSetting::<i32>::new(6);
pub static NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Durations in seconds (lifecycle.md §6); the unit lets `SET workflow.orphan_timeout = '15min'` work.
pub static ORPHAN_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(15 * 60);
pub static UNROUTABLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(60 * 60);
pub static DELIVERED_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(24 * 60 * 60);
pub static DEAD_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 60 * 60);
pub static RUN_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(30 * 24 * 60 * 60);

/// Lowest run specVersion pgworld accepts.
pub const MIN_SPEC_VERSION: i32 = 2;

pub fn init() {
    GucRegistry::define_string_guc(
        c"workflow.app_id",
        c"Label of the app the current transaction acts for (set per transaction by trusted callers).",
        c"Only members of pgworld_service are trusted with it; mapped client roles must match it when set.",
        &APP_ID,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"workflow.admin",
        c"Marks a pgworld_service transaction as acting for the admin identity.",
        c"Ignored for roles that are not members of pgworld_service.",
        &ADMIN,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"workflow.max_spec_version",
        c"Highest run specVersion accepted.",
        c"",
        &MAX_SPEC_VERSION,
        MIN_SPEC_VERSION,
        7,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"workflow.default_spec_version",
        c"specVersion stamped on runs whose creation request omits it.",
        c"",
        &DEFAULT_SPEC_VERSION,
        MIN_SPEC_VERSION,
        7,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"workflow.notify",
        c"Emit NOTIFY wake-up pings for dispatchers.",
        c"Off leaves dispatchers on polling only.",
        &NOTIFY,
        GucContext::Suset,
        GucFlags::default(),
    );
    define_seconds(
        c"workflow.orphan_timeout",
        c"Idle time before an orphaned running run is failed; 0 disables.",
        &ORPHAN_TIMEOUT,
        0,
    );
    define_seconds(
        c"workflow.unroutable_timeout",
        c"How long a due message may wait for a handler of its version before it goes dead.",
        &UNROUTABLE_TIMEOUT,
        1,
    );
    define_seconds(c"workflow.delivered_retention", c"Delivered messages older than this are deleted.", &DELIVERED_RETENTION, 0);
    define_seconds(c"workflow.dead_retention", c"Dead letters older than this are deleted.", &DEAD_RETENTION, 0);
    define_seconds(
        c"workflow.run_retention",
        c"Finished runs older than this are deleted with their logs, unless the app sets its own.",
        &RUN_RETENTION,
        3600,
    );
}

fn define_seconds(name: &'static std::ffi::CStr, short: &'static std::ffi::CStr, setting: &'static GucSetting<i32>, min: i32) {
    GucRegistry::define_int_guc(name, short, c"", setting, min, i32::MAX, GucContext::Suset, GucFlags::UNIT_S);
}

/// `workflow.app_id`, or None when unset or empty.
pub fn app_label() -> Option<String> {
    APP_ID.get().map(|c| c.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}
