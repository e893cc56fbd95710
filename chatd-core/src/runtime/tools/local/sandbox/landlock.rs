//! The Landlock layer ([BEHAVIOUR §13](crate::behaviour#13-tools)).
//!
//! Landlock forbids mounting to any process it restricts on the filesystem, so where
//! bubblewrap builds the namespaces (it mounts after this layer is entered) the layer
//! handles what needs no filesystem rights: abstract Unix sockets and signals are scoped to
//! the command's own processes, and with networking off TCP `bind`/`connect` are refused.
//! The mount namespace then confines the filesystem. Where bubblewrap is missing, the full
//! filesystem ruleset confines it instead: the workspace read-write, the system's
//! directories read-only, a few global `/proc` files and the harmless devices.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, Scope, path_beneath_rules,
};

use super::SandboxPolicy;

/// The kernel's Landlock ABI version (0 where unsupported), probed once per process.
///
/// The probe restricts a short-lived thread of its own (a Landlock domain belongs to the
/// thread that enters it), so the process itself is never restricted.
#[must_use]
pub(crate) fn landlock_abi() -> i32 {
    static ABI_VERSION: OnceLock<i32> = OnceLock::new();
    *ABI_VERSION.get_or_init(probe)
}

fn probe() -> i32 {
    let restricted = std::thread::spawn(|| {
        Ruleset::default()
            .handle_access(AccessFs::from_all(ABI::V1))
            .and_then(|ruleset| ruleset.create())
            .and_then(|created| created.restrict_self())
            .map(|status| match status.landlock {
                LandlockStatus::Available { effective_abi, kernel_abi } => {
                    kernel_abi.unwrap_or(effective_abi as i32)
                }
                _ => 0,
            })
            .unwrap_or(0)
    });
    restricted.join().unwrap_or(0)
}

fn refused(err: landlock::RulesetError) -> std::io::Error {
    std::io::Error::other(format!("cannot build the Landlock ruleset: {err}"))
}

/// The newest ABI whose rights are requested; older kernels get what they can enforce (the
/// crate's best-effort compatibility), and [`landlock_abi`] reports which that is.
const WANTED: ABI = ABI::V9;

/// Scopes and, with networking off, TCP: the ruleset entered before bubblewrap.
pub(super) fn scoped(policy: &SandboxPolicy) -> std::io::Result<RulesetCreated> {
    let mut ruleset =
        Ruleset::default().scope(Scope::AbstractUnixSocket | Scope::Signal).map_err(refused)?;
    if !policy.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(WANTED)).map_err(refused)?;
    }
    ruleset.create().map_err(refused)
}

/// The whole ruleset, filesystem included: where there are no namespaces.
pub(super) fn full(root: &Path, policy: &SandboxPolicy) -> std::io::Result<RulesetCreated> {
    let existing =
        |paths: Vec<PathBuf>| paths.into_iter().filter(|p| p.exists()).collect::<Vec<_>>();
    let read_only = existing(
        SandboxPolicy::SYSTEM_READ_ONLY
            .iter()
            .chain(SandboxPolicy::ETC_FILES)
            .map(PathBuf::from)
            .chain(policy.extra_read_only.iter().cloned())
            .collect(),
    );
    let devices = existing(SandboxPolicy::DEVICES.iter().map(PathBuf::from).collect());
    let proc_files = existing(SandboxPolicy::PROC_FILES.iter().map(PathBuf::from).collect());
    let writable = existing(
        std::iter::once(root.to_path_buf()).chain(policy.extra_writable.iter().cloned()).collect(),
    );
    // The workspace may hold regular files, directories, links, FIFOs and sockets — never
    // device nodes.
    let workspace_rights = AccessFs::from_all(WANTED) & !(AccessFs::MakeChar | AccessFs::MakeBlock);
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(WANTED))
        .and_then(|r| r.scope(Scope::AbstractUnixSocket | Scope::Signal))
        .map_err(refused)?;
    if !policy.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(WANTED)).map_err(refused)?;
    }
    ruleset
        .create()
        .and_then(|r| r.add_rules(path_beneath_rules(&read_only, AccessFs::from_read(WANTED))))
        .and_then(|r| r.add_rules(path_beneath_rules(&devices, AccessFs::from_file(WANTED))))
        .and_then(|r| {
            r.add_rules(path_beneath_rules(&proc_files, AccessFs::ReadFile | AccessFs::ReadDir))
        })
        .and_then(|r| r.add_rules(path_beneath_rules(&writable, workspace_rights)))
        .map_err(refused)
}
