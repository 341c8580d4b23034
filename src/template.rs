//! Templates: minijinja with Ansible's idioms (`default`, `is defined`,
//! chained lookups under a default, Python string methods, the filters
//! inventories use), bounded work, and no access to files, the environment
//! or anything but the variables given.
//!
//! Owns: the one configured environment, rendering a string (or evaluating
//! a lone `{{ expression }}`) against a [`Context`], whose variables may be
//! rendered on demand by a [`Scope`], and naming what was undefined — or
//! the Ansible fact that was needed — when a render fails. Must not: load
//! templates from disk or expose functions with effects.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// Instructions one render may execute: ample for `{{ a ~ b | upper }}`,
/// small enough that `{% for i in range(…) %}` loops end in milliseconds.
const FUEL: u64 = 50_000;
/// A rendered value longer than this is refused (config.xml values are
/// short).
const MAX_OUTPUT: usize = 64 * 1024;

/// The value of Ansible's `omit`: a variable (or playbook value) that
/// renders to exactly this is treated as not set.
pub const OMIT: &str = "__omit_place_holder__midfleet";

/// The template environment midfleet renders with. Cheap to clone.
#[derive(Clone)]
pub struct Templates {
    environment: Arc<Environment<'static>>,
    playbook_dir: Option<String>,
}

impl Default for Templates {
    fn default() -> Templates {
        Templates::new()
    }
}

impl fmt::Debug for Templates {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Templates")
            .field("playbook_dir", &self.playbook_dir)
            .finish_non_exhaustive()
    }
}

/// One name a failed render needed and did not find, with the variables
/// being rendered when it was looked up (`mid_config` → `mid_home`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub name: String,
    pub through: Vec<String>,
    /// An Ansible magic variable midfleet does not provide.
    pub magic: bool,
}

impl fmt::Display for Missing {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "`{}`", self.name)?;
        if self.magic {
            formatter.write_str(" (an Ansible magic variable midfleet does not provide)")?;
        }
        if !self.through.is_empty() {
            write!(formatter, " (used by {})", chain(&self.through))?;
        }
        Ok(())
    }
}

fn chain(names: &[String]) -> String {
    let names: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    names.join(" → ")
}

/// Why a template cannot be rendered; never holds a variable's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax: {0}")]
    Syntax(String),
    /// Variables the template needed that are not defined.
    #[error("undefined variable {}", quoted(.0))]
    Undefined(Vec<Missing>),
    /// An Ansible fact: midfleet gathers none, so a template that reads
    /// one cannot have the value Ansible would give it.
    #[error("needs the Ansible fact `{fact}`{}, which midfleet does not gather", through_text(.through))]
    NeedsFact { fact: String, through: Vec<String> },
    /// Variables whose templates refer back to themselves.
    #[error("variables refer to themselves: {}", chain(.0))]
    Cycle(Vec<String>),
    /// Another variable's template cannot be rendered.
    #[error("`{name}`: {error}")]
    InVariable {
        name: String,
        error: Box<TemplateError>,
    },
    /// Rendering failed (a filter's error, out of fuel…), as minijinja
    /// describes it.
    #[error("{0}")]
    Render(String),
    #[error("renders to {0} bytes, more than the {MAX_OUTPUT} allowed")]
    TooLong(usize),
}

impl TemplateError {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            TemplateError::NeedsFact { .. } => "give the value in the inventory (inventory vars, group_vars/, host_vars/) instead of reading a fact",
            TemplateError::Undefined(_) => "define the variable for this host (inventory vars, group_vars/, host_vars/), or give a default: `{{ name | default('value') }}`",
            TemplateError::Cycle(_) => "break the loop: one of these variables must not use the others",
            TemplateError::InVariable { error, .. } => error.hint(),
            _ => "fix the template",
        }
    }
}

fn through_text(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (through {})", chain(names))
    }
}

fn quoted(names: &[Missing]) -> String {
    let names: Vec<String> = names.iter().map(ToString::to_string).collect();
    names.join(", ")
}

/// Variables rendered on demand, e.g. one host's inventory variables.
pub trait Scope: Send + Sync + fmt::Debug {
    /// The value of `name`, rendered if it is a template; `None` when it
    /// is not defined. A variable whose template is undefined calls
    /// [`missing`] and returns `Some(Value::UNDEFINED)`; one that fails
    /// otherwise calls [`fail`].
    fn lookup(&self, name: &str) -> Option<Value>;
    /// Every name it defines.
    fn names(&self) -> Vec<String>;
}

/// Variables a template sees: fixed values, then a [`Scope`].
#[derive(Clone, Default)]
pub struct Context {
    values: BTreeMap<String, Value>,
    scope: Option<Arc<dyn Scope>>,
}

impl fmt::Debug for Context {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Names only: values may be secret.
        formatter
            .debug_struct("Context")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("scope", &self.scope.is_some())
            .finish()
    }
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// A context over `scope`'s variables.
    pub fn with_scope(scope: Arc<dyn Scope>) -> Context {
        Context {
            values: BTreeMap::new(),
            scope: Some(scope),
        }
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(name.into(), value.into());
    }

    /// The value of `name`, rendered when it is a lazy variable (a failure
    /// gives `None`; a render reports it).
    pub fn get(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.values.get(name) {
            return Some(value.clone());
        }
        let scope = self.scope.as_ref()?;
        let frames = FRAMES.with(|frames| frames.borrow().len());
        if frames > 0 {
            return scope.lookup(name).filter(|value| !value.is_undefined());
        }
        // Outside a render: one of its own, so that failures are dropped.
        with_frame(|| scope.lookup(name))
            .0
            .filter(|value| !value.is_undefined())
    }

    /// Every name it holds (magic variables included).
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.values.keys().cloned().collect();
        if let Some(scope) = &self.scope {
            names.extend(scope.names());
        }
        names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
            || self
                .scope
                .as_ref()
                .is_some_and(|scope| scope.names().iter().any(|known| known == name))
    }
}

impl From<BTreeMap<String, Value>> for Context {
    fn from(values: BTreeMap<String, Value>) -> Context {
        Context {
            values,
            scope: None,
        }
    }
}

/// What one render (a frame) found: names missed, how many undefined
/// values a `default` or an `is defined` took care of, and a failure that
/// no default hides.
#[derive(Default)]
struct Frame {
    missing: Vec<Missing>,
    excused: usize,
    fatal: Option<TemplateError>,
}

thread_local! {
    /// The renders in progress on this thread, innermost last: a lazy
    /// variable renders inside the render that needed it.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

fn with_frame<T>(work: impl FnOnce() -> T) -> (T, Frame) {
    FRAMES.with(|frames| frames.borrow_mut().push(Frame::default()));
    let result = work();
    let frame = FRAMES
        .with(|frames| frames.borrow_mut().pop())
        .unwrap_or_default();
    (result, frame)
}

/// Records, in the render in progress, that `name` was needed and is not
/// defined (`through`: the variables being rendered).
pub fn missing(name: &str, through: Vec<String>, magic: bool) {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            frame.missing.push(Missing {
                name: name.to_string(),
                through,
                magic,
            });
        }
    });
}

/// Fails the render in progress with `error`, whatever defaults follow.
pub fn fail(error: TemplateError) {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            frame.fatal.get_or_insert(error);
        }
    });
}

/// Whether the render in progress has already failed for good: a lazy
/// variable it still asks for need not be rendered (an error is not
/// remembered, so rendering it again for every use of a failing variable
/// would take time exponential in their depth).
pub fn failed() -> bool {
    FRAMES.with(|frames| {
        frames
            .borrow()
            .last()
            .is_some_and(|frame| frame.fatal.is_some())
    })
}

/// Runs `lookup` (a lazy variable's value) as a render of its own: `Ok`
/// with the value (`None`: not set), or why it cannot be had.
pub fn demand(lookup: impl FnOnce() -> Option<Value>) -> Result<Option<Value>, TemplateError> {
    let (value, frame) = with_frame(lookup);
    if let Some(fatal) = frame.fatal {
        return Err(fatal);
    }
    match value {
        Some(value) if value.is_undefined() => {
            let mut missing: Vec<Missing> = Vec::new();
            for miss in frame.missing {
                if !missing.contains(&miss) {
                    missing.push(miss);
                }
            }
            Err(TemplateError::Undefined(missing))
        }
        value => Ok(value),
    }
}

fn excuse() {
    FRAMES.with(|frames| {
        if let Some(frame) = frames.borrow_mut().last_mut() {
            frame.excused += 1;
        }
    });
}

/// The names Ansible's fact gathering (`setup`) sets: reading one is an
/// error that says so, never "define the variable".
pub fn is_ansible_fact(name: &str) -> bool {
    const FACTS: &[&str] = &[
        "all_ipv4_addresses",
        "all_ipv6_addresses",
        "apparmor",
        "architecture",
        "bios_date",
        "bios_vendor",
        "bios_version",
        "board_asset_tag",
        "board_name",
        "board_serial",
        "board_vendor",
        "board_version",
        "chassis_asset_tag",
        "chassis_serial",
        "chassis_vendor",
        "chassis_version",
        "cmdline",
        "date_time",
        "default_ipv4",
        "default_ipv6",
        "devices",
        "device_links",
        "distribution",
        "distribution_file_parsed",
        "distribution_file_path",
        "distribution_file_variety",
        "distribution_major_version",
        "distribution_release",
        "distribution_version",
        "dns",
        "domain",
        "effective_group_id",
        "effective_user_id",
        "env",
        "fibre_channel_wwn",
        "fips",
        "form_factor",
        "fqdn",
        "hostname",
        "hostnqn",
        "interfaces",
        "is_chroot",
        "iscsi_iqn",
        "kernel",
        "kernel_version",
        "local",
        "lsb",
        "lvm",
        "machine",
        "machine_id",
        "memfree_mb",
        "memory_mb",
        "memtotal_mb",
        "mounts",
        "nodename",
        "os_family",
        "pkg_mgr",
        "proc_cmdline",
        "processor",
        "processor_cores",
        "processor_count",
        "processor_nproc",
        "processor_threads_per_core",
        "processor_vcpus",
        "product_name",
        "product_serial",
        "product_uuid",
        "product_version",
        "python",
        "python_version",
        "real_group_id",
        "real_user_id",
        "selinux",
        "selinux_python_present",
        "service_mgr",
        "swapfree_mb",
        "swaptotal_mb",
        "system",
        "system_capabilities",
        "system_capabilities_enforced",
        "system_vendor",
        "uptime_seconds",
        "user_dir",
        "user_gecos",
        "user_gid",
        "user_id",
        "user_shell",
        "user_uid",
        "userspace_architecture",
        "userspace_bits",
        "virtualization_role",
        "virtualization_tech_guest",
        "virtualization_tech_host",
        "virtualization_type",
        "ip_addresses",
        "loadavg",
        "cpu",
    ];
    if name == "ansible_facts" || name.starts_with("facter_") || name.starts_with("ohai_") {
        return true;
    }
    let Some(fact) = name.strip_prefix("ansible_") else {
        return false;
    };
    if FACTS.contains(&fact) || fact.starts_with("ssh_host_key_") {
        return true;
    }
    // Network interfaces: ansible_eth0, ansible_ens192, ansible_lo, …
    let interface = [
        "eth", "ens", "enp", "eno", "em", "wlan", "wlp", "bond", "br", "docker", "veth", "virbr",
        "lo",
    ];
    interface.iter().any(|prefix| {
        fact.strip_prefix(prefix).is_some_and(|rest| {
            rest.is_empty() || rest.starts_with(|character: char| character.is_ascii_digit())
        })
    })
}

/// Ansible magic variables midfleet does not set (it runs no play).
fn is_unprovided_magic(name: &str) -> bool {
    matches!(
        name,
        "ansible_play_hosts"
            | "ansible_play_hosts_all"
            | "ansible_play_batch"
            | "play_hosts"
            | "ansible_play_name"
            | "ansible_play_role_names"
            | "ansible_role_names"
            | "ansible_dependent_role_names"
            | "role_name"
            | "role_path"
            | "role_names"
            | "ansible_check_mode"
            | "ansible_diff_mode"
            | "ansible_forks"
            | "ansible_limit"
            | "ansible_loop"
            | "ansible_loop_var"
            | "ansible_index_var"
            | "ansible_parent_role_names"
            | "ansible_parent_role_paths"
            | "ansible_run_tags"
            | "ansible_skip_tags"
            | "ansible_search_path"
            | "ansible_version"
            | "ansible_config_file"
            | "ansible_collection_name"
            | "ansible_verbosity"
            | "groups_names"
            | "item"
            | "ansible_inventory_sources"
            | "ansible_local"
            | "vars"
            | "environment"
    )
}

/// The root of a render: the [`Context`], recording what it lacks.
#[derive(Debug)]
struct Root(Context);

impl Object for Root {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some(value) = self.0.values.get(name) {
            return Some(value.clone());
        }
        if let Some(value) = self.0.scope.as_ref().and_then(|scope| scope.lookup(name)) {
            return Some(value);
        }
        if name == "omit" {
            return Some(Value::from(OMIT));
        }
        if is_ansible_fact(name) {
            fail(TemplateError::NeedsFact {
                fact: name.to_string(),
                through: Vec::new(),
            });
        } else {
            missing(name, Vec::new(), is_unprovided_magic(name));
        }
        None
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut names: Vec<Value> = self
            .0
            .values
            .keys()
            .map(|name| Value::from(name.as_str()))
            .collect();
        if let Some(scope) = &self.0.scope {
            names.extend(scope.names().into_iter().map(Value::from));
        }
        Enumerator::Values(names)
    }
}

impl Templates {
    pub fn new() -> Templates {
        let mut environment = Environment::new();
        // Ansible's undefined: a lookup on an undefined value gives another
        // (so `a.b | default('z')` works), but printing one is an error,
        // and so is any use no `default` or `is defined` takes care of.
        environment.set_undefined_behavior(UndefinedBehavior::Chainable);
        environment.set_formatter(|out, state, value| {
            if value.is_undefined() {
                return Err(Error::new(
                    ErrorKind::UndefinedError,
                    "an undefined value is printed",
                ));
            }
            minijinja::escape_formatter(out, state, value)
        });
        environment.set_fuel(Some(FUEL));
        // `debug()` prints the whole context, with every host's variables
        // through `hostvars`, outside the fuel's count.
        environment.remove_global("debug");
        environment.set_recursion_limit(32);
        environment
            .set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        environment.add_filter("default", default);
        environment.add_filter("d", default);
        environment.add_test("defined", |value: &Value| {
            if value.is_undefined() {
                excuse();
            }
            !value.is_undefined()
        });
        environment.add_test("undefined", |value: &Value| {
            if value.is_undefined() {
                excuse();
            }
            value.is_undefined()
        });
        environment.add_filter("bool", ansible_bool);
        environment.add_filter("int", ansible_int);
        environment.add_filter("regex_replace", regex_replace);
        environment.add_filter("b64encode", |text: &str| {
            base64::engine::general_purpose::STANDARD.encode(text)
        });
        environment.add_filter("b64decode", b64decode);
        environment.add_filter("basename", |path: &str| basename(path).to_string());
        environment.add_filter("dirname", |path: &str| dirname(path).to_string());
        Templates {
            environment: Arc::new(environment),
            playbook_dir: None,
        }
    }

    /// The same environment, with Ansible's `playbook_dir` (made absolute).
    pub fn with_playbook(mut self, playbook: &Path) -> Templates {
        let directory = playbook
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let directory = std::path::absolute(directory).unwrap_or_else(|_| directory.to_path_buf());
        self.playbook_dir = Some(directory.to_string_lossy().into_owned());
        self
    }

    /// `playbook_dir`, when a playbook is given.
    pub fn playbook_dir(&self) -> Option<&str> {
        self.playbook_dir.as_deref()
    }

    /// Whether `text` holds template syntax at all.
    pub fn is_template(text: &str) -> bool {
        text.contains("{{") || text.contains("{%") || text.contains("{#")
    }

    /// The variables `source` reads from its context (none when it is no
    /// template or does not parse).
    pub fn variables(&self, source: &str) -> BTreeSet<String> {
        if !Templates::is_template(source) {
            return BTreeSet::new();
        }
        self.environment
            .template_from_str(source)
            .map(|template| template.undeclared_variables(false).into_iter().collect())
            .unwrap_or_default()
    }

    /// Renders `source` with `context` to a string. The error names what
    /// was undefined, or the Ansible fact needed, when that is the cause.
    pub fn render(&self, source: &str, context: &Context) -> Result<String, TemplateError> {
        if !Templates::is_template(source) {
            return Ok(source.to_string());
        }
        let value = self.run(source, context, false)?;
        Ok(value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string))
    }

    /// The value of `source`: a lone `{{ expression }}` keeps its type (a
    /// list stays a list, as in Ansible); anything else renders to a
    /// string.
    pub fn evaluate(&self, source: &str, context: &Context) -> Result<Value, TemplateError> {
        if !Templates::is_template(source) {
            return Ok(Value::from(source));
        }
        self.run(source, context, true)
    }

    fn run(&self, source: &str, context: &Context, native: bool) -> Result<Value, TemplateError> {
        let root = Value::from_object(Root(context.clone()));
        let (result, frame) = with_frame(|| match lone_expression(source).filter(|_| native) {
            Some(expression) => self
                .environment
                .compile_expression(expression)
                .and_then(|expression| expression.eval(root)),
            None => self
                .environment
                .template_from_str(source)
                .and_then(|template| template.render(root))
                .map(Value::from),
        });
        if let Some(fatal) = frame.fatal {
            return Err(fatal);
        }
        let mut missing: Vec<Missing> = Vec::new();
        for miss in frame.missing.iter() {
            if !missing.contains(miss) {
                missing.push(miss.clone());
            }
        }
        let undefined = |what: &str| {
            if missing.is_empty() {
                TemplateError::Render(format!("{what} is undefined"))
            } else {
                TemplateError::Undefined(missing.clone())
            }
        };
        let value = match result {
            Err(error) if error.kind() == ErrorKind::SyntaxError => {
                return Err(TemplateError::Syntax(describe(&error)))
            }
            Err(error) if error.kind() == ErrorKind::UndefinedError => {
                return Err(undefined("a value it prints"))
            }
            Err(error) => return Err(TemplateError::Render(describe(&error))),
            Ok(value) => value,
        };
        if value.is_undefined() {
            return Err(undefined("its value"));
        }
        // A name was missed and no `default`/`is defined` took care of it:
        // it was used as if it were defined (`x | upper`, `{% if x %}`).
        if frame.missing.len() > frame.excused {
            return Err(undefined("a value it uses"));
        }
        let length = value
            .as_str()
            .map_or_else(|| value.to_string().len(), str::len);
        if length > MAX_OUTPUT {
            return Err(TemplateError::TooLong(length));
        }
        Ok(value)
    }
}

/// The expression of a template that is one `{{ … }}` and nothing else.
fn lone_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    if Templates::is_template(inner) || inner.contains("}}") || inner.contains("%}") {
        return None;
    }
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    Some(inner)
}

/// Ansible's `default(value, boolean=false)`: `value` when undefined (or,
/// with `boolean`, false, empty or none).
fn default(value: &Value, fallback: Option<Value>, boolean: Option<bool>) -> Value {
    let fallback = fallback.unwrap_or_else(|| Value::from(""));
    if value.is_undefined() {
        excuse();
        return fallback;
    }
    if boolean.unwrap_or(false) && !value.is_true() {
        return fallback;
    }
    value.clone()
}

/// Ansible's `bool`: the strings yes/on/1/true (any case) and the number 1
/// are true; other strings (`y` too), none and other numbers are false.
fn ansible_bool(value: &Value) -> Result<bool, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "`bool` of an undefined value",
        ));
    }
    if let Some(text) = value.as_str() {
        return Ok(matches!(
            text.trim().to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ));
    }
    if value.is_none() {
        return Ok(false);
    }
    if let Ok(number) = f64::try_from(value.clone()) {
        return Ok(number == 1.0);
    }
    Ok(value.is_true())
}

/// Jinja's `int(default=0, base=10)`: Python's `int()`, then `int(float())`,
/// else the default (`'0x1A' | int` is 0, `'3.7' | int` is 3).
fn ansible_int(value: &Value, fallback: Option<Value>, base: Option<u32>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "`int` of an undefined value",
        ));
    }
    let fallback = fallback.unwrap_or_else(|| Value::from(0));
    if let Some(flag) = value
        .as_str()
        .is_none()
        .then(|| bool::try_from(value.clone()).ok())
        .flatten()
    {
        return Ok(Value::from(i64::from(flag)));
    }
    if let Some(text) = value.as_str() {
        let text = text.trim().replace('_', "");
        let base = base.unwrap_or(10);
        if let Ok(number) = i128::from_str_radix(&text, base) {
            return Ok(Value::from(number));
        }
        if base == 10 {
            if let Ok(number) = text.parse::<f64>() {
                if number.is_finite() {
                    return Ok(Value::from(number.trunc() as i64));
                }
            }
        }
        return Ok(fallback);
    }
    if let Ok(number) = i64::try_from(value.clone()) {
        return Ok(Value::from(number));
    }
    if let Ok(number) = f64::try_from(value.clone()) {
        if number.is_finite() {
            return Ok(Value::from(number.trunc() as i64));
        }
    }
    Ok(fallback)
}

/// Ansible's `regex_replace(pattern, replacement='', ignorecase=false,
/// multiline=false)` with Python's `\1` and `\g<name>` references.
fn regex_replace(
    text: &str,
    pattern: &str,
    replacement: Option<&str>,
    ignorecase: Option<bool>,
    multiline: Option<bool>,
) -> Result<String, Error> {
    let regex = regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase.unwrap_or(false))
        .multi_line(multiline.unwrap_or(false))
        .size_limit(1 << 20)
        .build()
        .map_err(|error| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("regex_replace: bad regular expression: {error}"),
            )
        })?;
    let replacement = python_replacement(replacement.unwrap_or(""));
    let replaced = regex.replace_all(text, replacement.as_str()).into_owned();
    if replaced.len() > MAX_OUTPUT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "regex_replace: the result is too long",
        ));
    }
    Ok(replaced)
}

/// Python's `re.sub` replacement (`\1`, `\g<1>`, `\g<name>`, `\\`) in the
/// `regex` crate's syntax (`${1}`, `$$`).
fn python_replacement(replacement: &str) -> String {
    let mut out = String::new();
    let mut characters = replacement.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '$' => out.push_str("$$"),
            '\\' => match characters.peek().copied() {
                Some(digit) if digit.is_ascii_digit() => {
                    let mut group = String::new();
                    while let Some(digit) = characters.peek().copied().filter(char::is_ascii_digit)
                    {
                        group.push(digit);
                        characters.next();
                        if group.len() == 2 {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{group}}}"));
                }
                Some('g') => {
                    characters.next();
                    if characters.peek() == Some(&'<') {
                        characters.next();
                        let name: String = characters.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    characters.next();
                    out.push('\n');
                }
                Some('t') => {
                    characters.next();
                    out.push('\t');
                }
                Some('\\') => {
                    characters.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

fn b64decode(text: &str) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        // Not the decoder's own message: it quotes a byte of the input
        // and where it is, and the input may be a secret.
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                "b64decode: the text is not valid base64",
            )
        })?;
    String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8 text",
        )
    })
}

/// Python's `os.path.basename`: the part after the last `/`.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Python's `os.path.dirname`: the part before the last `/`, trailing
/// slashes removed unless it is all slashes.
fn dirname(path: &str) -> &str {
    let head = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() {
        head
    } else {
        trimmed
    }
}

fn describe(error: &Error) -> String {
    let mut message = error.kind().to_string();
    if let Some(detail) = error.detail() {
        message = format!("{message}: {detail}");
    }
    if error.kind() == ErrorKind::OutOfFuel {
        message.push_str(" (the template does too much work; loops are bounded)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Context {
        let mut context = Context::new();
        context.insert("mid_name", "emea01");
        context.insert("port", 22);
        context
    }

    #[test]
    fn renders_filters_and_plain_text() {
        let templates = Templates::new();
        assert_eq!(
            templates
                .render("svc_mid_{{ mid_name }}", &context())
                .unwrap(),
            "svc_mid_emea01"
        );
        assert_eq!(
            templates
                .render("{{ mid_name | upper }}:{{ port }}", &context())
                .unwrap(),
            "EMEA01:22"
        );
        assert_eq!(
            templates.render("no template", &context()).unwrap(),
            "no template"
        );
    }

    #[test]
    fn undefined_variables_are_named() {
        let error = Templates::new()
            .render("svc_{{ mid_nmae }}", &context())
            .unwrap_err();
        assert_eq!(error.to_string(), "undefined variable `mid_nmae`");
        let error = Templates::new()
            .render("{{ mid_name.missing.deeper }}", &context())
            .unwrap_err();
        assert!(error.to_string().contains("undefined"), "{error}");
    }

    #[test]
    fn work_is_bounded_and_nothing_outside_is_reachable() {
        let templates = Templates::new();
        let error = templates
            .render(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &context(),
            )
            .unwrap_err();
        assert!(!error.to_string().is_empty());
        for source in [
            "{% include '/etc/passwd' %}",
            "{{ env.HOME }}",
            "{{ lookup('file', '/etc/passwd') }}",
        ] {
            assert!(templates.render(source, &context()).is_err(), "{source}");
        }
        let error = templates
            .render("{{ 'x' * 100000 }}", &context())
            .unwrap_err();
        assert!(error.to_string().contains("more than"), "{error}");
    }

    /// Each idiom, with what Ansible 2.19 prints for it (`ansible localhost
    /// -m debug -a "msg={{ … }}"`; booleans print in Jinja's spelling).
    #[test]
    fn ansible_filters_and_python_methods_render_as_ansible_does() {
        let templates = Templates::new();
        let cases = [
            ("{{ x | default('y') }}", "y"),
            ("{{ x | d('y') }}", "y"),
            ("{{ a.q.r | default('z') }}", "z"),
            ("{{ '' | default('e', true) }}", "e"),
            ("{{ '' | default('e') }}", ""),
            ("{{ mid_name | default('e', true) }}", "emea01"),
            ("{{ x is defined }}", "False"),
            ("{{ x is undefined }}", "True"),
            ("{{ mid_name is defined }}", "True"),
            ("{{ 'set' if mid_name is defined else 'unset' }}", "set"),
            (
                "{% if x is defined %}{{ x }}{% else %}none{% endif %}",
                "none",
            ),
            ("{{ 'yes' | bool }}", "True"),
            ("{{ 'On' | bool }}", "True"),
            ("{{ 'Y' | bool }}", "False"),
            ("{{ 'x' | bool }}", "False"),
            ("{{ 1 | bool }}", "True"),
            ("{{ 2 | bool }}", "False"),
            ("{{ '0x1A' | int }}", "0"),
            ("{{ ' 42 ' | int }}", "42"),
            ("{{ '3.7' | int }}", "3"),
            ("{{ '1_000' | int }}", "1000"),
            ("{{ 'a.b.c'.split('.') | join('|') }}", "a|b|c"),
            ("{{ 'a b  c'.split() | join('|') }}", "a|b|c"),
            ("{{ 'a.b' | split('.') | join('|') }}", "a|b"),
            ("{{ 'a b  c' | split | join('|') }}", "a|b|c"),
            ("{{ 'abc'.upper() }}", "ABC"),
            ("{{ 'ABC'.lower() }}", "abc"),
            ("{{ 'abc'.startswith('ab') }}", "True"),
            ("{{ 'abc'.endswith('x') }}", "False"),
            ("{{ 'a-b'.replace('-', '_') }}", "a_b"),
            ("{{ ' x '.strip() }}", "x"),
            ("{{ 'MiD' | lower }}:{{ 'MiD' | upper }}", "mid:MID"),
            ("{{ 'a-b-c' | replace('-', '.') }}", "a.b.c"),
            ("{{ 'aXbX' | regex_replace('X', '-') }}", "a-b-"),
            (
                r"{{ 'aXbx' | regex_replace('(?i)x', '[\\g<0>]') }}",
                "a[X]b[x]",
            ),
            (
                r"{{ 'ab12' | regex_replace('([a-z]+)(\\d+)', '\\2-\\1') }}",
                "12-ab",
            ),
            ("{{ 'a$b' | regex_replace('b', 'c') }}", "a$c"),
            ("{{ [1, 2] | first }}:{{ 'abc' | last }}", "1:c"),
            ("{{ ['a', 'b'] | join(',') }}", "a,b"),
            ("{{ ' x ' | trim }}", "x"),
            ("{{ 'aé' | b64encode }}", "YcOp"),
            ("{{ 'YcOp' | b64decode }}", "aé"),
            ("{{ '/a/b/c.txt' | basename }}", "c.txt"),
            ("{{ '/a/b/c.txt' | dirname }}", "/a/b"),
            ("{{ '/a/b/' | basename }}", ""),
            ("{{ '/a/b/' | dirname }}", "/a/b"),
            ("{{ 'abc' | dirname }}", ""),
            ("{{ '/abc' | dirname }}", "/"),
        ];
        for (source, expected) in cases {
            assert_eq!(
                templates.render(source, &context()),
                Ok(expected.to_string()),
                "{source}"
            );
        }
    }

    #[test]
    fn an_undefined_value_used_is_an_error_naming_it() {
        let templates = Templates::new();
        for (source, name) in [
            ("{{ x }}", "x"),
            ("{{ x | upper }}", "x"),
            ("{{ x.y }}", "x"),
            ("{% if x %}a{% endif %}", "x"),
            ("{{ x | default(y) }}", "y"),
            ("{{ mid_name ~ x }}", "x"),
            ("{{ x | default('a') ~ y }}", "y"),
        ] {
            match templates.render(source, &context()) {
                Err(TemplateError::Undefined(missing)) => assert!(
                    missing.iter().any(|miss| miss.name == name),
                    "{source}: {missing:?}"
                ),
                other => panic!("{source}: {other:?}"),
            }
        }
        // An attribute of a defined value that is missing: printed, it is
        // an error too.
        let error = templates
            .render("{{ mid_name.missing }}", &context())
            .unwrap_err();
        assert!(error.to_string().contains("undefined"), "{error}");
    }

    #[test]
    fn facts_are_named_as_facts_even_under_a_default() {
        let templates = Templates::new();
        for (source, fact) in [
            ("{{ ansible_env.HOME }}", "ansible_env"),
            (
                "{{ ansible_default_ipv4.address | default('10.0.0.1') }}",
                "ansible_default_ipv4",
            ),
            ("{{ ansible_facts['hostname'] }}", "ansible_facts"),
            ("{{ ansible_eth0.ipv4.address }}", "ansible_eth0"),
            (
                "{{ ansible_distribution is defined }}",
                "ansible_distribution",
            ),
        ] {
            let error = templates.render(source, &context()).unwrap_err();
            assert_eq!(
                error,
                TemplateError::NeedsFact {
                    fact: fact.to_string(),
                    through: Vec::new()
                },
                "{source}"
            );
            assert!(error.hint().contains("inventory"), "{source}");
        }
        // Connection variables are no facts.
        for name in [
            "ansible_host",
            "ansible_user",
            "ansible_port",
            "ansible_become",
            "ansible_lo_thing",
        ] {
            assert!(!is_ansible_fact(name), "{name}");
        }
        assert!(is_ansible_fact("ansible_lo") && is_ansible_fact("ansible_ens192"));
    }

    #[test]
    fn play_magic_variables_are_named_as_not_provided() {
        let error = Templates::new()
            .render("{{ ansible_play_hosts | join(',') }}", &context())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "undefined variable `ansible_play_hosts` (an Ansible magic variable midfleet does not provide)"
        );
    }

    #[test]
    fn a_lone_expression_keeps_its_type_and_omit_is_a_value() {
        let templates = Templates::new();
        let value = templates.evaluate("{{ [1, 2] }}", &context()).unwrap();
        assert_eq!(value.len(), Some(2));
        let value = templates.evaluate("{{ port }}", &context()).unwrap();
        assert_eq!(value, Value::from(22));
        let value = templates.evaluate("p{{ port }}", &context()).unwrap();
        assert_eq!(value.as_str(), Some("p22"));
        assert_eq!(templates.render("{{ omit }}", &context()).unwrap(), OMIT);
    }

    #[test]
    fn syntax_errors_are_reported() {
        let error = Templates::new()
            .render("{{ mid_name ", &context())
            .unwrap_err();
        assert!(error.to_string().starts_with("template syntax"), "{error}");
    }

    /// A filter's error never quotes the value it was given (it may be a
    /// vaulted password): base64's decoder names the bad byte and where.
    #[test]
    fn b64decode_errors_do_not_quote_the_input() {
        let mut context = Context::new();
        context.insert("secret", "Sup3r-Secret#");
        let message = Templates::new()
            .render("{{ secret | b64decode }}", &context)
            .unwrap_err()
            .to_string();
        assert!(message.contains("not valid base64"), "{message}");
        for leak in ["45", "35", "offset", "Secret", "-", "#"] {
            assert!(!message.contains(leak), "{leak} in {message}");
        }
    }
}
