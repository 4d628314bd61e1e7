//! The event state machine (spec/events.md §2–§7) as a pure function:
//! given the current run/step/hook/wait and a validated request, the writes to make or a typed error.
//! The extension gathers `State` under row locks, calls `plan`, and applies the `Plan` verbatim.

use crate::attributes;
use crate::error::{Code, WfError, WfResult};
use crate::model::*;
use crate::request::{Body, Bootstrap, CreateRequest, EventType, BOOTSTRAP_FIELDS};
use crate::ts::{self, Micros};
use serde_json::{json, Map, Value};

/// Settings the rules need that are not part of any entity.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub now: Micros,
    pub min_spec_version: i32,
    pub max_spec_version: i32,
    pub default_spec_version: i32,
    /// Id to use when `run_created` came with the path `null`.
    pub minted_run_id: String,
}

/// What the extension read before planning. Which of these it must read: `Lookups`.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub run: Option<Run>,
    pub step: Option<Step>,
    pub hook: Option<Hook>,
    pub wait: Option<Wait>,
    /// Run id of the live hook of this app that holds the requested token.
    pub token_holder: Option<String>,
    /// The run already has an `attr_set` with this correlationId.
    pub attr_correlation_taken: bool,
    /// An earlier `hook_received` of this run with the same `resumeId`.
    pub prior_resume: Option<Event>,
    /// The bootstrap's deployment version is expired.
    pub version_expired: bool,
    pub max_events_per_run: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Step,
    Hook,
    Wait,
}

/// The reads a request needs, so the extension touches only what the rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookups {
    pub child: Option<ChildKind>,
    pub token: Option<String>,
    pub attr_correlation: Option<String>,
    pub resume_id: Option<String>,
    /// Deployment id whose version status matters (run creation).
    pub version: Option<String>,
    /// The response carries the run, so its payload columns must be read too.
    pub run_payloads: bool,
    /// The child row should exist already (the event moves it on), so it can be locked
    /// together with the run.
    pub child_expected: bool,
}

pub fn lookups(req: &CreateRequest) -> Lookups {
    let corr = req.correlation_id.clone();
    let mut l =
        Lookups { run_payloads: req.event_type.is_run_event() || req.event_type == EventType::AttrSet, ..Lookups::default() };
    match &req.body {
        Body::RunCreated(b) | Body::RunStarted(b) => l.version = b.deployment_id.clone(),
        Body::AttrSet(_) => l.attr_correlation = corr,
        Body::StepCreated { .. } => l.child = Some(ChildKind::Step),
        Body::StepStarted { .. } | Body::StepCompleted { .. } | Body::StepFailed { .. } | Body::StepRetrying { .. } => {
            l.child = Some(ChildKind::Step);
            l.child_expected = true;
        }
        Body::HookCreated(h) => {
            l.child = Some(ChildKind::Hook);
            l.token = Some(h.token.clone());
        }
        Body::HookReceived => {
            l.child = Some(ChildKind::Hook);
            l.child_expected = true;
            l.resume_id = req.resume_id.clone();
        }
        Body::HookDisposed => {
            l.child = Some(ChildKind::Hook);
            l.child_expected = true;
        }
        Body::WaitCreated { .. } => l.child = Some(ChildKind::Wait),
        Body::WaitCompleted => {
            l.child = Some(ChildKind::Wait);
            l.child_expected = true;
        }
        Body::RunCompleted { .. } | Body::RunFailed { .. } | Body::RunCancelled | Body::RunExpired => {}
    }
    l
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write<T> {
    Insert(T),
    Update(T),
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunWrite {
    /// Only the event count moves (it always does when events are appended).
    None,
    Insert(Run),
    Update(Run),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChildWrite {
    None,
    Step(Write<Step>),
    Hook(Write<Hook>),
    Wait(Write<Wait>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub correlation_id: Option<String>,
    pub event_data: Option<Map<String, Value>>,
    pub spec_version: i32,
    pub resume_id: Option<String>,
    pub resume_digest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// Index into `Plan::events`.
    Appended(usize),
    Existing(Box<Event>),
    Null,
}

/// Which parts the response carries (http-api.md §4.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub event: ReplyEvent,
    pub run: bool,
    pub step: bool,
    pub hook: bool,
    pub wait: bool,
    pub step_created: bool,
    pub max_events: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub run_id: String,
    pub run: RunWrite,
    pub child: ChildWrite,
    /// Appended in order at slots `event_count + 1 …`.
    pub events: Vec<NewEvent>,
    /// A new pending/running run: counts against `maxRuns`.
    pub new_active_run: bool,
    /// The run entered a terminal status: dispose hooks, complete waits, release its quota slot.
    pub terminated: bool,
    pub reply: Reply,
    /// The run as it is after the plan (for the response).
    pub run_after: Run,
}

fn terminal_conflict(run: &Run) -> WfError {
    WfError::new(Code::RunTerminal, format!("Run {} is in terminal state: {}", run.run_id, run.status.as_str()))
}

fn terminal_gone(run: &Run) -> WfError {
    WfError::new(Code::RunExpired, format!("Run {} is in terminal state: {}", run.run_id, run.status.as_str()))
}

fn without_fields(data: &Option<Map<String, Value>>, fields: &[&str]) -> Option<Map<String, Value>> {
    let mut d = data.clone()?;
    for f in fields {
        d.remove(*f);
    }
    (!d.is_empty()).then_some(d)
}

fn only_fields(data: &Option<Map<String, Value>>, fields: &[&str]) -> Option<Map<String, Value>> {
    let d = data.as_ref()?;
    let kept: Map<String, Value> = fields.iter().filter_map(|f| d.get(*f).map(|v| ((*f).to_owned(), v.clone()))).collect();
    (!kept.is_empty()).then_some(kept)
}

struct Planner<'a> {
    req: &'a CreateRequest,
    state: &'a State,
    ctx: &'a Ctx,
}

impl Planner<'_> {
    fn corr(&self) -> String {
        self.req.correlation_id.clone().unwrap_or_default()
    }

    fn event(&self, t: EventType, data: Option<Map<String, Value>>, spec: i32) -> NewEvent {
        NewEvent {
            event_type: t,
            correlation_id: self.req.correlation_id.clone(),
            event_data: data,
            spec_version: self.req.spec_version.unwrap_or(spec),
            resume_id: None,
            resume_digest: None,
        }
    }

    fn plain_event(&self, run: &Run) -> NewEvent {
        self.event(self.req.event_type, self.req.event_data.clone(), run.spec_version)
    }

    fn run(&self) -> WfResult<&Run> {
        let id = self.req.run_id.as_deref().unwrap_or("null");
        self.state.run.as_ref().ok_or_else(|| WfError::new(Code::RunNotFound, format!("Run {id} not found")))
    }

    fn check_spec(&self, spec: i32) -> WfResult<()> {
        let (lo, hi) = (self.ctx.min_spec_version, self.ctx.max_spec_version);
        if spec < lo || spec > hi {
            return Err(WfError::new(
                Code::SpecUnsupported,
                format!("specVersion {spec} is not supported (accepted: {lo}..{hi})"),
            ));
        }
        Ok(())
    }

    /// Spec, attribute and version checks shared by `run_created` and a resilient `run_started`.
    fn new_run(&self, run_id: String, b: &Bootstrap, status: RunStatus) -> WfResult<Run> {
        let spec = self.req.spec_version.unwrap_or(self.ctx.default_spec_version);
        self.check_spec(spec)?;
        if b.attributes.as_ref().is_some_and(|a| !a.is_empty()) && spec < 4 {
            return Err(WfError::new(Code::SpecUnsupported, "initial attributes require specVersion 4 or newer"));
        }
        Ok(Run {
            run_id,
            status,
            deployment_id: b.deployment_id.clone().unwrap_or_default(),
            workflow_name: b.workflow_name.clone().unwrap_or_default(),
            spec_version: spec,
            event_count: 0,
            execution_context: b.execution_context.clone(),
            input: b.input.clone(),
            output: None,
            error: None,
            error_code: None,
            attributes: b.attributes.clone().unwrap_or_default(),
            encryption_public_key: b.encryption_public_key.clone(),
            created_at: self.ctx.now,
            updated_at: self.ctx.now,
            started_at: (status == RunStatus::Running).then_some(self.ctx.now),
            completed_at: None,
            expired_at: None,
        })
    }

    fn check_version(&self, b: &Bootstrap) -> WfResult<()> {
        if self.state.version_expired {
            let v = b.deployment_id.as_deref().unwrap_or_default();
            return Err(WfError::new(Code::VersionExpired, format!("Deployment version {v} is expired")));
        }
        Ok(())
    }

    fn check_event_quota(&self, run: &Run, appended: usize) -> WfResult<()> {
        if self.req.event_type.is_quota_exempt() || appended == 0 {
            return Ok(());
        }
        if run.event_count + appended as i64 > self.state.max_events_per_run {
            return Err(WfError::new(Code::EventQuota, "Event quota exceeded for this run"));
        }
        Ok(())
    }

    fn reply(&self, event: ReplyEvent) -> Reply {
        let t = self.req.event_type;
        Reply {
            event,
            run: t.is_run_event() || t == EventType::AttrSet,
            step: matches!(
                t,
                EventType::StepCreated
                    | EventType::StepStarted
                    | EventType::StepCompleted
                    | EventType::StepFailed
                    | EventType::StepRetrying
            ),
            hook: matches!(t, EventType::HookCreated | EventType::HookReceived | EventType::HookDisposed),
            wait: matches!(t, EventType::WaitCreated | EventType::WaitCompleted),
            step_created: false,
            max_events: t.is_run_event(),
        }
    }

    fn finish(&self, run: &Run, run_write: RunWrite, child: ChildWrite, events: Vec<NewEvent>, reply: Reply) -> WfResult<Plan> {
        self.check_event_quota(run, events.len())?;
        let mut run_after = match &run_write {
            RunWrite::None => run.clone(),
            RunWrite::Insert(r) | RunWrite::Update(r) => r.clone(),
        };
        let terminated = !run.status.is_terminal() && run_after.status.is_terminal() && !matches!(run_write, RunWrite::Insert(_));
        run_after.event_count = run.event_count + events.len() as i64;
        Ok(Plan {
            run_id: run.run_id.clone(),
            new_active_run: matches!(run_write, RunWrite::Insert(_)),
            run: run_write,
            child,
            events,
            terminated,
            reply,
            run_after,
        })
    }

    fn plan(&self) -> WfResult<Plan> {
        match &self.req.body {
            Body::RunCreated(b) => self.run_created(b),
            Body::RunStarted(b) => self.run_started(b),
            Body::RunCompleted { output } => self.run_terminal(RunStatus::Completed, |r| r.output = output.clone()),
            Body::RunFailed { error, error_code } => self.run_terminal(RunStatus::Failed, |r| {
                r.error = error.clone();
                r.error_code = error_code.clone();
            }),
            Body::RunCancelled => self.run_cancelled(),
            Body::RunExpired => self.run_terminal(RunStatus::Expired, |r| r.expired_at = Some(r.updated_at)),
            Body::AttrSet(changes) => self.attr_set(changes),
            Body::StepCreated { step_name, input } => self.step_created(step_name, input),
            Body::StepStarted { lazy: Some(lazy) } => self.step_started_lazy(lazy),
            Body::StepStarted { lazy: None } => self.step_started(),
            Body::StepCompleted { result } => self.step_finish(|s, now| {
                s.status = StepStatus::Completed;
                s.output = result.clone();
                s.completed_at = Some(now);
            }),
            Body::StepFailed { error } => self.step_finish(|s, now| {
                s.status = StepStatus::Failed;
                s.error = error.clone();
                s.completed_at = Some(now);
            }),
            Body::StepRetrying { error, retry_after } => self.step_finish(|s, _| {
                s.status = StepStatus::Pending;
                s.error = error.clone();
                s.retry_after = *retry_after;
            }),
            Body::HookCreated(h) => self.hook_created(h),
            Body::HookReceived => self.hook_received(),
            Body::HookDisposed => self.hook_disposed(),
            Body::WaitCreated { resume_at } => self.wait_created(*resume_at),
            Body::WaitCompleted => self.wait_completed(),
        }
    }

    fn run_created(&self, b: &Bootstrap) -> WfResult<Plan> {
        let run_id = self.req.run_id.clone().unwrap_or_else(|| self.ctx.minted_run_id.clone());
        let run = self.new_run(run_id, b, RunStatus::Pending)?;
        if self.state.run.is_some() {
            return Err(WfError::new(Code::RunExists, format!("Run {} already exists", run.run_id)));
        }
        self.check_version(b)?;
        let ev = self.event(EventType::RunCreated, self.req.event_data.clone(), run.spec_version);
        let mut before = run.clone();
        before.status = RunStatus::Pending;
        self.finish(&before, RunWrite::Insert(run), ChildWrite::None, vec![ev], self.reply(ReplyEvent::Appended(0)))
    }

    fn run_started(&self, b: &Bootstrap) -> WfResult<Plan> {
        let Some(run) = &self.state.run else {
            if !b.can_create() {
                let id = self.req.run_id.as_deref().unwrap_or("null");
                return Err(WfError::new(Code::RunNotFound, format!("Run {id} not found")));
            }
            // Resilient start: create the run directly as running (events.md §6.2).
            let run_id = self.req.run_id.clone().unwrap_or_default();
            let created = self.new_run(run_id, b, RunStatus::Running)?;
            self.check_version(b)?;
            let events = vec![
                self.event(EventType::RunCreated, only_fields(&self.req.event_data, &BOOTSTRAP_FIELDS), created.spec_version),
                self.event(EventType::RunStarted, without_fields(&self.req.event_data, &BOOTSTRAP_FIELDS), created.spec_version),
            ];
            let mut before = created.clone();
            before.status = RunStatus::Pending;
            return self.finish(
                &before,
                RunWrite::Insert(created),
                ChildWrite::None,
                events,
                self.reply(ReplyEvent::Appended(1)),
            );
        };
        match run.status {
            // Running: idempotent. Terminal: a late workflow message for a finished run. Both are
            // answered with the run and no event, never an error, so every client (the
            // @platformatic/world client turns any 410 into a generic error that the WDK runtime
            // rethrows) sees the run's status and acknowledges the message.
            s if s == RunStatus::Running || s.is_terminal() => {
                self.finish(run, RunWrite::None, ChildWrite::None, vec![], self.reply(ReplyEvent::Null))
            }
            _ => {
                let mut next = run.clone();
                next.status = RunStatus::Running;
                next.started_at = next.started_at.or(Some(self.ctx.now));
                next.updated_at = self.ctx.now;
                let ev =
                    self.event(EventType::RunStarted, without_fields(&self.req.event_data, &BOOTSTRAP_FIELDS), run.spec_version);
                self.finish(run, RunWrite::Update(next), ChildWrite::None, vec![ev], self.reply(ReplyEvent::Appended(0)))
            }
        }
    }

    fn run_terminal(&self, to: RunStatus, set: impl FnOnce(&mut Run)) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        let mut next = run.clone();
        next.status = to;
        next.updated_at = self.ctx.now;
        next.completed_at = Some(self.ctx.now);
        set(&mut next);
        self.finish(
            run,
            RunWrite::Update(next),
            ChildWrite::None,
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn run_cancelled(&self) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status == RunStatus::Cancelled {
            // Idempotent success: the event is recorded again, the run stays as it is.
            return self.finish(
                run,
                RunWrite::None,
                ChildWrite::None,
                vec![self.plain_event(run)],
                self.reply(ReplyEvent::Appended(0)),
            );
        }
        self.run_terminal(RunStatus::Cancelled, |_| {})
    }

    fn attr_set(&self, changes: &[attributes::Change]) -> WfResult<Plan> {
        let run = self.run()?;
        if self.req.spec_version.is_some_and(|s| s < 4) || run.spec_version < 4 {
            return Err(WfError::new(Code::SpecUnsupported, "attributes require specVersion 4 or newer"));
        }
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        if self.state.attr_correlation_taken {
            return Err(WfError::new(Code::AttrDuplicate, format!("Attributes for correlation {} already set", self.corr())));
        }
        let mut next = run.clone();
        next.attributes = attributes::apply(&run.attributes, changes)?;
        next.updated_at = self.ctx.now;
        self.finish(
            run,
            RunWrite::Update(next),
            ChildWrite::None,
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn new_step(&self, run: &Run, name: &str, input: Option<Value>, status: StepStatus, attempt: i32) -> Step {
        Step {
            run_id: run.run_id.clone(),
            step_id: self.corr(),
            step_name: name.to_owned(),
            status,
            attempt,
            spec_version: self.req.spec_version.unwrap_or(run.spec_version),
            input,
            output: None,
            error: None,
            retry_after: None,
            created_slot: run.event_count + 1,
            created_at: self.ctx.now,
            updated_at: self.ctx.now,
            started_at: (status == StepStatus::Running).then_some(self.ctx.now),
            completed_at: None,
        }
    }

    fn step_exists(&self) -> WfError {
        WfError::new(Code::StepExists, format!("Step {} already exists", self.corr()))
    }

    fn step_created(&self, name: &str, input: &Option<Value>) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        if self.state.step.is_some() {
            return Err(self.step_exists());
        }
        let step = self.new_step(run, name, input.clone(), StepStatus::Pending, 0);
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Step(Write::Insert(step)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn step_started_lazy(&self, lazy: &crate::request::LazyStep) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        if self.state.step.is_some() {
            return Err(self.step_exists());
        }
        let step = self.new_step(run, &lazy.step_name, Some(lazy.input.clone()), StepStatus::Running, 1);
        let mut created = Map::new();
        created.insert("stepName".into(), Value::String(lazy.step_name.clone()));
        created.insert("input".into(), lazy.input.clone());
        if let Some(w) = &lazy.workflow_name {
            created.insert("workflowName".into(), w.clone());
        }
        let events = vec![
            self.event(EventType::StepCreated, Some(created), run.spec_version),
            self.event(EventType::StepStarted, without_fields(&self.req.event_data, &["input"]), run.spec_version),
        ];
        let mut reply = self.reply(ReplyEvent::Appended(1));
        reply.step_created = true;
        self.finish(run, RunWrite::None, ChildWrite::Step(Write::Insert(step)), events, reply)
    }

    fn existing_step(&self) -> WfResult<&Step> {
        self.state.step.as_ref().ok_or_else(|| WfError::new(Code::StepNotFound, format!("Step {} not found", self.corr())))
    }

    fn step_terminal(step: &Step) -> WfError {
        WfError::new(Code::StepTerminal, format!("Step {} is in terminal state: {}", step.step_id, step.status.as_str()))
    }

    fn step_started(&self) -> WfResult<Plan> {
        let run = self.run()?;
        let step = self.existing_step()?;
        if step.status.is_terminal() {
            return Err(Self::step_terminal(step));
        }
        if run.status.is_terminal() {
            return Err(terminal_gone(run));
        }
        if let Some(at) = step.retry_after.filter(|at| *at > self.ctx.now) {
            return Err(WfError::new(Code::TooEarly, format!("Step {} retryAfter not reached", step.step_id))
                .with_meta(json!({"retryAfter": ts::to_iso(at)})));
        }
        let mut next = step.clone();
        next.status = StepStatus::Running;
        next.attempt += 1;
        next.started_at = next.started_at.or(Some(self.ctx.now));
        next.retry_after = None;
        next.updated_at = self.ctx.now;
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Step(Write::Update(next)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn step_finish(&self, set: impl FnOnce(&mut Step, Micros)) -> WfResult<Plan> {
        let run = self.run()?;
        let step = self.existing_step()?;
        if step.status.is_terminal() {
            return Err(Self::step_terminal(step));
        }
        if run.status.is_terminal() && step.status != StepStatus::Running {
            return Err(terminal_gone(run));
        }
        let mut next = step.clone();
        next.updated_at = self.ctx.now;
        set(&mut next, self.ctx.now);
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Step(Write::Update(next)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn hook_created(&self, h: &crate::request::NewHook) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        if self.state.hook.is_some() {
            return Err(WfError::new(Code::HookExists, format!("Hook {} already exists", self.corr())));
        }
        if let Some(holder) = &self.state.token_holder {
            let mut data = Map::new();
            data.insert("token".into(), Value::String(h.token.clone()));
            data.insert("conflictingRunId".into(), Value::String(holder.clone()));
            let ev = self.event(EventType::HookConflict, Some(data), run.spec_version);
            let mut reply = self.reply(ReplyEvent::Appended(0));
            reply.hook = false;
            return self.finish(run, RunWrite::None, ChildWrite::None, vec![ev], reply);
        }
        let hook = Hook {
            run_id: run.run_id.clone(),
            hook_id: self.corr(),
            token: h.token.clone(),
            status: HookStatus::Pending,
            owner_id: h.owner_id.clone(),
            project_id: h.project_id.clone(),
            environment: h.environment.clone(),
            metadata: h.metadata.clone(),
            is_webhook: h.is_webhook,
            is_system: h.is_system,
            spec_version: self.req.spec_version.unwrap_or(run.spec_version),
            created_at: self.ctx.now,
            received_at: None,
            disposed_at: None,
        };
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Hook(Write::Insert(hook)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn hook_missing(&self) -> WfError {
        WfError::new(Code::HookNotFound, format!("Hook {} not found", self.corr()))
    }

    fn hook_received(&self) -> WfResult<Plan> {
        let run = self.run()?;
        if let Some(prior) = &self.state.prior_resume {
            if prior.resume_digest == self.req.resume_digest {
                return self.finish(
                    run,
                    RunWrite::None,
                    ChildWrite::None,
                    vec![],
                    self.reply(ReplyEvent::Existing(Box::new(prior.clone()))),
                );
            }
            let id = self.req.resume_id.as_deref().unwrap_or_default();
            return Err(WfError::new(Code::ResumeConflict, format!("Resume {id} was recorded with a different payload")));
        }
        let hook = self.state.hook.as_ref().filter(|h| h.status != HookStatus::Disposed).ok_or_else(|| self.hook_missing())?;
        let mut next = hook.clone();
        next.status = HookStatus::Received;
        next.received_at = Some(self.ctx.now);
        let mut ev = self.plain_event(run);
        ev.resume_id = self.req.resume_id.clone();
        ev.resume_digest = self.req.resume_id.as_ref().and(self.req.resume_digest.clone());
        self.finish(run, RunWrite::None, ChildWrite::Hook(Write::Update(next)), vec![ev], self.reply(ReplyEvent::Appended(0)))
    }

    fn hook_disposed(&self) -> WfResult<Plan> {
        let run = self.run()?;
        let hook = self.state.hook.as_ref().ok_or_else(|| self.hook_missing())?;
        if hook.status == HookStatus::Disposed {
            return Err(WfError::new(Code::HookDisposed, format!("Hook {} is already disposed", hook.hook_id)));
        }
        let mut next = hook.clone();
        next.status = HookStatus::Disposed;
        next.disposed_at = Some(self.ctx.now);
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Hook(Write::Update(next)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn wait_created(&self, resume_at: Micros) -> WfResult<Plan> {
        let run = self.run()?;
        if run.status.is_terminal() {
            return Err(terminal_conflict(run));
        }
        if self.state.wait.is_some() {
            return Err(WfError::new(Code::WaitExists, format!("Wait {} already exists", self.corr())));
        }
        let wait = Wait {
            run_id: run.run_id.clone(),
            wait_id: self.corr(),
            status: WaitStatus::Waiting,
            resume_at: Some(resume_at),
            spec_version: self.req.spec_version.unwrap_or(run.spec_version),
            created_at: self.ctx.now,
            updated_at: self.ctx.now,
            completed_at: None,
        };
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Wait(Write::Insert(wait)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }

    fn wait_completed(&self) -> WfResult<Plan> {
        let run = self.run()?;
        let wait = self
            .state
            .wait
            .as_ref()
            .ok_or_else(|| WfError::new(Code::WaitNotFound, format!("Wait {} not found", self.corr())))?;
        if wait.status == WaitStatus::Completed {
            return Err(WfError::new(Code::WaitCompleted, format!("Wait {} already completed", wait.wait_id)));
        }
        let mut next = wait.clone();
        next.status = WaitStatus::Completed;
        next.completed_at = Some(self.ctx.now);
        next.updated_at = self.ctx.now;
        self.finish(
            run,
            RunWrite::None,
            ChildWrite::Wait(Write::Update(next)),
            vec![self.plain_event(run)],
            self.reply(ReplyEvent::Appended(0)),
        )
    }
}

/// Decides what a create does. Pure: same inputs, same plan.
pub fn plan(req: &CreateRequest, state: &State, ctx: &Ctx) -> WfResult<Plan> {
    Planner { req, state, ctx }.plan()
}

#[cfg(test)]
mod tests;
