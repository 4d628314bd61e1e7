//! Every setting the extension defines (spec/README.md, "Database settings").

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static APP_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static ADMIN: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static MAX_SPEC_VERSION: GucSetting<i32> = GucSetting::<i32>::new(7);
pub static DEFAULT_SPEC_VERSION: GucSetting<i32> = GucSetting::<i32>::new(6);
pub static NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

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
}

/// `workflow.app_id`, or None when unset or empty.
pub fn app_label() -> Option<String> {
    APP_ID.get().map(|c| c.to_string_lossy().into_owned()).filter(|s| !s.is_empty())
}
