//! The emulated instance:
//!
//! - [`server`]: the accept loop (one thread per connection), HTTP or
//!   HTTPS (rustls; with `--client-ca`, client certificates asked for and
//!   verified), the fault knobs (`--fail-first N`: 503 to the first N
//!   requests; `--hang`: accept and never answer; `--faults FILE`: `503`
//!   or `hang` while the file says so, read at each request;
//!   `--read-only TABLE`:
//!   403 to every write of TABLE; `--deny-read TABLE`: 403 to every read
//!   of TABLE but the admin's), the request log.
//! - [`identity`]: logins without a password: a client certificate named
//!   by `sys_user_certificate` (mutual TLS), IPKI registration keys and
//!   bearer credentials.
//! - [`http`]: one HTTP/1.1 request in, one answer out (`Connection:
//!   close`), query decoding.
//! - [`tables`]: the Table API subset: GET/POST/PATCH on `sys_user`,
//!   `sys_user_role`, `sys_user_has_role`, `ecc_agent` (new records not
//!   `validated`, no `container_id`, `is_using_custom_cert` false, a
//!   default `version`), `ecc_agent_config` (admins write, `mid_server`
//!   reads), `ecc_queue` (new records `ready`, with
//!   `sys_created_on`); `sysparm_query` (`field=value` and `fieldINa,b` joined by `^`,
//!   `ORDERBYfield`, `ORDERBYDESCfield`), `sysparm_fields`, `sysparm_limit`,
//!   `sysparm_input_display_value=true` (without it a `user_password` is
//!   stored as if already hashed, so it never logs in); basic auth against
//!   `sys_user` (active, not locked out, password); writes need the
//!   `admin` role (`mid_server` for `ecc_agent` and `ecc_queue`, which a
//!   MID updates); the business rule that refuses `mid_server` with
//!   `security_admin` on one user. Seeded: the roles `admin`, `mid_server`
//!   and `security_admin`, and the integration user `admin`.

pub mod http;
pub mod identity;
pub mod server;
pub mod tables;
