//! The command line as clap sees it. Help texts here are the user manual's
//! first page: keep them true when behaviour changes.

use std::path::PathBuf;

use std::ffi::OsString;

use clap::{ArgAction, Args, ColorChoice, CommandFactory, FromArgMatches, Parser, Subcommand};

use super::console::{Console, OutputFormat, ProgressMode};
use super::exit::Failure;
use crate::ansible_cfg::AnsibleCfg;
use crate::ops::connection::Connection;
use crate::ops::hosts::{InventorySource, Selection};
use crate::ops::Operator;

/// Keep a fleet of ServiceNow MID Servers in a declared state.
///
/// midfleet rotates the instance user and password of MID Servers (and
/// other config.xml parameters) safely, idempotently and in parallel: it
/// changes only the bytes that must change, and never leaves a file
/// half-written.
#[derive(Debug, Parser)]
#[command(
    name = "midfleet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 success or nothing to do, 1 something failed, \
2 changes pending (edit --check), 3 bad usage or input (nothing was touched)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses `arguments` (the first is the program name) as clap does,
    /// with clap's own colour (help, usage errors) off under --no-color or
    /// NO_COLOR, as midfleet's.
    pub fn parse_arguments(arguments: &[OsString]) -> Result<Cli, clap::Error> {
        let options: Vec<&OsString> = arguments
            .iter()
            .skip(1)
            .take_while(|argument| *argument != "--")
            .collect();
        let no_color = options.iter().any(|argument| *argument == "--no-color");
        // `--progress never` (or MIDFLEET_PROGRESS=never) writes no escape
        // sequence either, clap's help and usage errors included.
        let progress_never = options
            .windows(2)
            .any(|pair| pair[0] == "--progress" && pair[1] == "never")
            || options
                .iter()
                .any(|argument| *argument == "--progress=never")
            || (!options
                .iter()
                .any(|argument| argument.to_string_lossy().starts_with("--progress"))
                && std::env::var_os("MIDFLEET_PROGRESS").is_some_and(|value| value == "never"));
        let mut command = Cli::command();
        if !super::console::colour_allowed(no_color) || progress_never {
            command = command.color(ColorChoice::Never);
        }
        let mut matches = command.try_get_matches_from_mut(arguments)?;
        Cli::from_arg_matches_mut(&mut matches).map_err(|error| error.format(&mut command))
    }
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// How results are written to stdout: tables for people, or JSON for
    /// scripts. Progress, warnings and errors always go to stderr.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,

    /// No colours and no escape sequences at all, in every command and in
    /// this help (also when the NO_COLOR environment variable is set):
    /// progress is then plain lines unless --progress always.
    #[arg(long, global = true)]
    pub no_color: bool,

    /// How progress is shown on stderr: live bars or plain lines (for logs
    /// and CI; with -v, a line per step too). `never` also writes no
    /// colour: no escape sequence at all.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "MIDFLEET_PROGRESS",
        default_value_t = ProgressMode::Auto,
        value_name = "WHEN"
    )]
    pub progress: ProgressMode,

    /// Say more, per host, on stderr (repeat for more): `-v` the files read
    /// (ansible.cfg, inventory, variables, playbook), each host's connection
    /// (address, jumps, key, host key and its known_hosts line), each step
    /// with its time and the MID log line that decided health; `-vv` also
    /// the remote stderr; `-vvv` also each channel and script. With
    /// `--output json`, the same as data in the results. Secrets are masked.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The console these options ask for.
    pub fn console(&self) -> Console {
        Console::new(self.output, self.no_color, self.verbose, self.progress)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Check(CheckArgs),
    Hosts(HostsArgs),
    Facts(FactsArgs),
    Plan(PlanArgs),
    Apply(ApplyArgs),
    Rollback(RollbackArgs),
    Unlock(UnlockArgs),
    /// A throwaway local fleet of 5 MID hosts, run by `midfleet-demo` from
    /// beside midfleet (real sshd, simulated MIDs and instance): facts, the
    /// user rotation applied (its plan, a canary, the rest), and a second,
    /// empty plan; then everything is torn down (also on Ctrl-C; a demo
    /// killed outright is cleaned by the next one or `midfleet lab down`).
    /// Needs openssh-server; as root each host gets its own
    /// /opt/servicenow, as a normal user its own folder. To rehearse on a
    /// fleet that stays up: `midfleet lab up`.
    ///
    /// The demo stands on test doubles kept out of midfleet: this runs
    /// `midfleet-demo` from beside midfleet (`cargo build --release
    /// --workspace` builds both).
    Demo,
    Lab(super::lab::LabArgs),
    Edit(EditArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// Print the shell completion script for SHELL to stdout.
///
/// Commands, options and their values then complete on Tab. Load it for the current shell, or install it where the shell looks:
///
///   bash:  source <(midfleet completions bash)
///          (or save it as ~/.local/share/bash-completion/completions/midfleet)
///   zsh:   midfleet completions zsh > ~/.zfunc/_midfleet
///          (with `fpath+=~/.zfunc; autoload -U compinit; compinit` in ~/.zshrc)
///   fish:  midfleet completions fish > ~/.config/fish/completions/midfleet.fish
///   elvish: midfleet completions elvish >> ~/.config/elvish/rc.elv
///   powershell: midfleet completions powershell >> $PROFILE
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print midfleet's manual page (roff) to stdout, or with --dir write one
/// page per command into a folder, for packagers.
///
/// Read it now with `midfleet man | man -l -`; install the pages with
/// `midfleet man --dir /usr/share/man/man1` (writes midfleet.1,
/// midfleet-plan.1, midfleet-apply.1, …; `man midfleet-plan` then opens
/// the page of `plan`).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write midfleet.1 and a midfleet-COMMAND.1 page per command into
    /// this folder (which must exist) instead of printing midfleet.1;
    /// prints the paths written. Existing pages of those names are
    /// replaced.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Where the fleet is described.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file or directory (Ansible's YAML or INI shape, with
    /// group_vars/ and host_vars/ beside it; an executable file is an
    /// inventory script, run with --list). Repeat to merge several.
    /// Default: `inventory` of ansible.cfg (found as Ansible finds it) or
    /// ANSIBLE_INVENTORY.
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<PathBuf>,

    /// Variables over every inventory variable of every host (Ansible's
    /// highest precedence): `key=value …` (values are strings), a YAML or
    /// JSON mapping (`'{"key": 1}'`), or `@FILE`. Repeat; later ones win.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,

    /// Narrow the selection further with a host pattern, as Ansible's
    /// --limit: `a,b` or `a:b`, `&` (and), `!` (not), globs, `~regex`,
    /// subscripts `g[0]`, `g[-1]`, `g[0:2]` (both ends included); `@FILE`
    /// reads one pattern per line. Hosts keep the order of the pattern (or
    /// playbook) being narrowed.
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub limit: Option<String>,

    /// Only the K-th of N parts of the selected hosts, to split one run
    /// across N jump hosts (each runs the same command with its own K). A
    /// host's part depends only on its name: stable as the inventory grows.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::inventory::Shard>,

    /// The ssh client configuration to honour (Host, HostName, User, Port,
    /// IdentityFile, ProxyJump, ConnectTimeout), below inventory variables.
    #[arg(
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        default_value = "~/.ssh/config"
    )]
    pub ssh_config: PathBuf,

    #[command(flatten)]
    pub vault: VaultArgs,
}

impl InventoryArgs {
    /// The selection these options describe (with ansible.cfg's defaults),
    /// for `pattern` to narrow.
    pub fn selection(
        &self,
        configuration: &AnsibleCfg,
        operator: &dyn Operator,
    ) -> Result<Selection, Failure> {
        Ok(Selection {
            inventory: InventorySource::new(
                &self.inventory,
                &self.extra_vars,
                self.vault.vault_settings(),
                configuration,
                operator,
            )?,
            limit: self.limit.clone(),
            shard: self.shard,
            ssh_config: self.ssh_config.clone(),
        })
    }
}

/// Ansible Vault passwords, taken as Ansible takes them (also from
/// ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST,
/// ANSIBLE_VAULT_IDENTITY and ANSIBLE_VAULT_ID_MATCH).
#[derive(Debug, Clone, Default, Args)]
pub struct VaultArgs {
    /// A vault password file, or an executable script that prints the
    /// password (repeat for several). A `!vault` value is decrypted only
    /// when used; a vaulted variables file when read.
    #[arg(
        long = "vault-password-file",
        visible_alias = "vault-pass-file",
        value_name = "FILE"
    )]
    pub vault_password_files: Vec<PathBuf>,

    /// A labelled vault password: SOURCE is a password file, a script
    /// (`*-client` scripts are given `--vault-id LABEL`) or `prompt`. The
    /// password of a text's own label is tried first, then the others.
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE", value_parser = parse_vault_id)]
    pub vault_ids: Vec<String>,

    /// Ask for the vault password on the terminal.
    #[arg(long = "ask-vault-pass", visible_alias = "ask-vault-password")]
    pub ask_vault_pass: bool,
}

fn parse_vault_id(text: &str) -> Result<String, String> {
    crate::vault::VaultId::parse(text, "--vault-id")
        .map(|_| text.to_string())
        .map_err(|error| error.reason.to_string())
}

impl VaultArgs {
    /// The vault passwords' sources: these options and Ansible's
    /// environment variables, in Ansible's order.
    pub fn vault_ids(&self) -> crate::vault::VaultIds {
        crate::vault::VaultIds::from_settings(&self.vault_settings())
    }

    /// These options and Ansible's environment variables as settings; an
    /// ansible.cfg fills `identity_list` and `default_password_file` where
    /// the environment left them empty.
    pub fn vault_settings(&self) -> crate::vault::VaultSettings {
        let variable = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|value| !value.trim().is_empty())
        };
        crate::vault::VaultSettings {
            identity_list: variable("ANSIBLE_VAULT_IDENTITY_LIST")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|entry| !entry.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            vault_ids: self.vault_ids.clone(),
            password_files: self.vault_password_files.clone(),
            default_password_file: variable("ANSIBLE_VAULT_PASSWORD_FILE").map(|path| {
                (
                    PathBuf::from(path),
                    "ANSIBLE_VAULT_PASSWORD_FILE".to_string(),
                )
            }),
            ask_vault_pass: self.ask_vault_pass,
            default_label: variable("ANSIBLE_VAULT_IDENTITY"),
            id_match: variable("ANSIBLE_VAULT_ID_MATCH").is_some_and(|value| {
                matches!(
                    value.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on" | "y" | "t"
                )
            }),
        }
    }
}

/// `--forks` when neither the command line nor ansible.cfg sets it.
pub const DEFAULT_FORKS: u16 = 16;

/// How hosts are reached.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Hosts worked on at once [default: `forks` of ansible.cfg, or
    /// ANSIBLE_FORKS, else 16].
    #[arg(short = 'f', long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub forks: Option<u16>,

    /// known_hosts file to check host keys against (default:
    /// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts). `@revoked` lines
    /// are honoured; `@cert-authority` (host certificates) is not supported.
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,

    /// Record the keys of hosts seen for the first time (a changed key is
    /// always refused). Refused by apply: secrets are never sent to a key
    /// seen for the first time.
    #[arg(long)]
    pub accept_new_host_keys: bool,

    /// Show where each host's time went (connect, handshake, auth, exec
    /// channels, script runs).
    #[arg(long)]
    pub timings: bool,

    /// Timeout in seconds of each SSH operation once connected.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub ssh_timeout: u64,
}

impl ConnectionArgs {
    /// The connection options, as plain values: the command line over
    /// ansible.cfg (and its environment variables) over midfleet's default.
    pub fn connection(&self, configuration: &AnsibleCfg) -> Connection {
        let forks = self
            .forks
            .or(configuration.forks.as_ref().map(|setting| setting.value))
            .unwrap_or(DEFAULT_FORKS);
        Connection {
            forks: usize::from(forks),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys: self.accept_new_host_keys,
            ssh_timeout: self.ssh_timeout,
        }
    }
}

/// Read each host's state over SSH: a read-only table.
///
/// One SSH session and one command per host: the instance user, the
/// password's form (plaintext, encrypted, reference, never the value), the
/// key pair, the service and its state, config.xml's fingerprint, owner and
/// mode, the kind of MID (basic, mtls, ipki, cyberark or another secret
/// provider, dpapi, container, upgrading), and any unfinished midfleet
/// transaction. Exit 1 when any host failed; the others are still
/// reported.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  midfleet facts -i inventory/example.yml --limit emea
  midfleet facts -i inventory/ --playbook playbooks/rotate-user.yml
  midfleet facts -i inventory/ --output json | jq '.[] | select(.password == \"plaintext\") | .host'")]
pub struct FactsArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// A playbook whose `instance:` section is used to read each MID's
    /// ecc_agent record and ecc_agent_config rows (its other sections
    /// are ignored, its hosts too): only then are containers and
    /// upgrading MIDs told by the instance's word, not only by the
    /// host's files.
    #[arg(long, value_name = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Validate an inventory and a playbook offline; contact nothing.
///
/// Reads every inventory source, the playbook, selects the hosts, resolves
/// each host's settings and renders its desired values, and reports every
/// problem found (not just the first) with file, line and column. Exit 0
/// when clean (warnings allowed), 3 otherwise.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  midfleet check -i inventory/example.yml playbooks/rotate-user.yml
  midfleet check -i inventory/ --limit emea --resolve-secrets playbooks/rotate-user.yml")]
pub struct CheckArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// The playbook to check against the inventory.
    pub playbook: Option<PathBuf>,

    /// Also resolve every secret reference (env:, file:, command:,
    /// prompt:) to prove it works; values are never shown or kept.
    #[arg(long)]
    pub resolve_secrets: bool,
}

/// List the hosts a pattern selects, with how midfleet will reach them.
///
/// Shows each host's address, port, user, jump hosts, become (`as USER`
/// for a become user other than root), config.xml path and service, after
/// variable precedence and templates, exactly as the other commands will
/// use them.
#[derive(Debug, Args)]
#[command(
    after_help = "Patterns: all, *, group and host names, globs (mid-emea-*), a:b union, \
a:&b intersection, a:!b exclusion, @FILE.

Examples:
  midfleet hosts -i inventory/example.yml 'emea:!mid-emea-03'
  midfleet hosts -i inventory/example.yml --output json | jq -r '.[].address'"
)]
pub struct HostsArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// Which hosts (default: all).
    #[arg(default_value = "all")]
    pub pattern: String,
}

/// Edit one local config.xml, changing only the bytes of the values asked.
///
/// The low-level tool under every midfleet write, on a file of this
/// machine: no inventory, no playbook rules, no state. Values are compared
/// as the MID's XML parser reads them and written escaped; the
/// `glide.glidesoap.*` spelling of the instance user and password is edited
/// when the file uses it; commented-out parameters are never touched. The
/// write is atomic (temp file in the same directory, original owner, group
/// and mode, fsync, rename), and a file that already holds what was asked
/// is not written at all, not even its mtime.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  # The documented MID user change, password from the environment:
  MID_PASSWORD=... midfleet edit /opt/servicenow/mid/agent/config.xml \\
      --set mid.instance.username=svc_mid_emea01 \\
      --set-secret mid.instance.password=env:MID_PASSWORD \\
      --unset keypairs.mid_id --diff

  # Would anything change? (exit 0 no, 2 yes, 1 error)
  midfleet edit agent/config.xml --set url=https://acme.service-now.com/ --check")]
pub struct EditArgs {
    /// The config.xml to edit (a symlink is followed; the link stays).
    pub file: PathBuf,

    /// Set parameter NAME to VALUE, adding it before </parameters> when
    /// missing. Do not use it for passwords: argv is visible to every user
    /// of this machine; use --set-secret.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,

    /// Set parameter NAME to a secret read from REF: env:VAR, file:PATH,
    /// command:CMD (its stdout) or prompt:LABEL. The value is never shown.
    #[arg(long = "set-secret", value_name = "NAME=REF")]
    pub set_secret: Vec<String>,

    /// Remove parameter NAME (with its line when it stands alone on it).
    #[arg(long = "unset", value_name = "NAME")]
    pub unset: Vec<String>,

    /// Write nothing; exit 0 when the file already holds what was asked,
    /// 2 when it would change, 1 on error.
    #[arg(long)]
    pub check: bool,

    /// Show a unified diff of the change, sensitive values masked.
    #[arg(long)]
    pub diff: bool,
}

/// Show what a playbook would change on each host, reading every host.
///
/// Reads each selected host's config.xml and service over SSH (one exec
/// per host), compares it with the playbook's desired values and prints a
/// plan per host: `~` update, `+` add, `-` remove, the restart or start it
/// needs, and why a value differs when it is not obvious. Changes nothing.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 no changes (or changes, without --detailed-exitcode), 1 a host failed, \
2 changes pending (--detailed-exitcode), 3 bad inventory, playbook or secret.

Examples:
  MID_PASSWORD_EMEA01=... midfleet plan -i inventory/example.yml playbooks/rotate-user.yml
  midfleet plan -i inventory/ playbooks/rotate-user.yml --out rotate.plan --detailed-exitcode"
)]
pub struct PlanArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    /// The playbook: desired parameters, rollout and health settings.
    pub playbook: PathBuf,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Also save the plan (JSON, mode 0600, no secret values) for
    /// `midfleet apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Exit 2 when there are changes (0 when none, 1 on errors).
    #[arg(long)]
    pub detailed_exitcode: bool,

    /// With a `rotate:` playbook: every host rotates now, whatever the
    /// age of its credentials (docs/rotation.md).
    #[arg(long)]
    pub rotate_now: bool,
}

/// Apply a playbook (or a saved plan): per host, a transaction that
/// finishes or rolls back on its own.
///
/// Plans first (or reads the saved plan), shows it, asks on a terminal
/// (`--yes` otherwise), then rolls it out in batches: on each host a
/// detached script stops the MID, checks the file is the one planned,
/// backs it up, writes the new bytes atomically, starts the MID and waits
/// for it to log in as the expected user — and puts everything back (and
/// restarts) when anything fails. A dropped connection or a killed
/// midfleet changes nothing about how a host's transaction ends.
#[derive(Debug, Args)]
#[command(
    after_help = "Results: applied, unchanged, rolled_back (the old files are back and running), failed \
(rollback failed too: see the backup path), unreachable, error (nothing changed), stale (the file \
changed since the plan), locked (another run holds the host), skipped (batch cancelled).
Exit codes: 0 every host applied or unchanged, 1 otherwise or interrupted, 3 bad input.

Examples:
  midfleet apply -i inventory/example.yml playbooks/rotate-user.yml
  midfleet apply --plan rotate.plan --yes"
)]
pub struct ApplyArgs {
    /// Inventory file or directory (repeat to merge; default: ansible.cfg's
    /// `inventory` or ANSIBLE_INVENTORY); not with --plan.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "INVENTORY",
        conflicts_with = "plan"
    )]
    pub inventory: Vec<PathBuf>,

    /// Variables over every inventory variable (see `plan --help`); not
    /// with --plan.
    #[arg(
        short = 'e',
        long = "extra-vars",
        value_name = "VARS",
        conflicts_with = "plan"
    )]
    pub extra_vars: Vec<String>,

    /// Narrow the playbook's hosts with a host pattern, as Ansible's
    /// --limit (see `plan --help`; `@FILE` reads one pattern per line; not
    /// with --plan).
    #[arg(short = 'l', long, value_name = "PATTERN", conflicts_with = "plan")]
    pub limit: Option<String>,

    /// Only the K-th of N parts of the playbook's hosts (see `plan
    /// --help`; not with --plan: a saved plan is already one part).
    #[arg(long, value_name = "K/N", conflicts_with = "plan")]
    pub shard: Option<crate::inventory::Shard>,

    /// The ssh client configuration to honour.
    #[arg(
        short = 'F',
        long = "ssh-config",
        value_name = "FILE",
        default_value = "~/.ssh/config"
    )]
    pub ssh_config: PathBuf,

    #[command(flatten)]
    pub vault: VaultArgs,

    /// The playbook to apply (not with --plan).
    #[arg(required_unless_present = "plan", conflicts_with = "plan")]
    pub playbook: Option<PathBuf>,

    /// Apply exactly this saved plan: hosts whose file changed since are
    /// `stale` and untouched; a secret that now resolves differently stops
    /// the run before any host.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,

    /// Do not ask; required when not on a terminal. With a playbook, each
    /// changing host's read session then stays open and its transaction is
    /// staged on it (one login per host for plan and apply).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// With a `rotate:` playbook: every host rotates now, whatever the
    /// age of its credentials (docs/rotation.md; not with --plan).
    #[arg(long, conflicts_with = "plan")]
    pub rotate_now: bool,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// The local audit log (JSON lines; default
    /// ~/.local/state/midfleet/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// Restore the newest backup midfleet made on each host, then restart the
/// MID and wait for it to log in as the user of that backup.
#[derive(Debug, Args)]
#[command(
    after_help = "Results: rolled_back (the backup is in and the MID runs on it), not_rolled_back \
(the MID did not come up on the backup: the files before the rollback are back), failed, \
unreachable, locked, skipped; the same words with --output json and in the audit log, and \
the summary counts them (`Rollback RUN: 3 rolled back, 1 failed.`)."
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Do not ask; required when not on a terminal.
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Seconds to wait for each MID to log in after its start.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub health_timeout: u64,

    /// The local audit log (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

/// Break the lock a dead run left on hosts. Says whose lock it was, and
/// refuses while that run's lease is live, unless --force.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub inventory: InventoryArgs,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Break a lock whose lease is still live (only when you know its run
    /// is gone: its transaction may otherwise still be changing the host).
    #[arg(long)]
    pub force: bool,

    /// The local audit log (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

impl ApplyArgs {
    /// The selection of `apply PLAYBOOK` (without `--plan`).
    pub fn selection(
        &self,
        configuration: &AnsibleCfg,
        operator: &dyn Operator,
    ) -> Result<Selection, Failure> {
        Ok(Selection {
            inventory: InventorySource::new(
                &self.inventory,
                &self.extra_vars,
                self.vault.vault_settings(),
                configuration,
                operator,
            )?,
            limit: self.limit.clone(),
            shard: self.shard,
            ssh_config: self.ssh_config.clone(),
        })
    }
}
