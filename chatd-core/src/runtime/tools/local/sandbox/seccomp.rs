//! The seccomp layer ([BEHAVIOUR §13](crate::behaviour#13-tools)): system calls a confined command never needs and an
//! attacker would — tracing other processes, keyrings, kernel modules, BPF, mounting and new
//! namespaces, device nodes, io_uring (whose operations bypass seccomp) — fail with `EPERM`;
//! with networking off, so does every socket that is not a Unix socket. `clone3` fails with
//! `ENOSYS` (its flags sit in memory a filter cannot read), so libc falls back to `clone`,
//! whose namespace flags the filter checks.
//!
//! Filters are compiled once per policy with `seccompiler` and handed to bubblewrap as
//! programs (`--add-seccomp-fd`), or applied in the child where bubblewrap is missing.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The compiled filters, applied in order.
#[derive(Debug, Clone)]
pub(super) struct Filters(pub(super) Vec<BpfProgram>);

impl Filters {
    /// The filters as raw `struct sock_filter` arrays, the form bubblewrap reads.
    pub(super) fn as_bytes(&self) -> Vec<Vec<u8>> {
        self.0
            .iter()
            .map(|program| {
                program
                    .iter()
                    .flat_map(|insn| {
                        let mut bytes = Vec::with_capacity(8);
                        bytes.extend_from_slice(&insn.code.to_ne_bytes());
                        bytes.push(insn.jt);
                        bytes.push(insn.jf);
                        bytes.extend_from_slice(&insn.k.to_ne_bytes());
                        bytes
                    })
                    .collect()
            })
            .collect()
    }
}

/// System calls refused outright.
const DENIED: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_syslog,
    libc::SYS_fanotify_init,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_vhangup,
];

/// The namespace flags `clone` may not carry.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

fn rule(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, seccompiler::BackendError> {
    SeccompRule::new(vec![SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)?])
}

/// The architecture's seccomp target, where seccompiler knows it.
fn target() -> Option<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).ok()
}

/// Builds the filters for a policy with `network` allowed or not; `Err` says why the layer
/// cannot be had here (an architecture seccompiler does not know).
pub(super) fn filters(network: bool) -> Result<Filters, String> {
    let arch = target()
        .ok_or_else(|| format!("seccomp filters are not built for {}", std::env::consts::ARCH))?;
    let build = || -> Result<Filters, seccompiler::BackendError> {
        let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
            DENIED.iter().map(|nr| (*nr, Vec::new())).collect();
        // Device nodes (FIFOs and plain files stay allowed).
        let device = |at: u8| -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
            let kind = u64::from(libc::S_IFMT);
            Ok(vec![
                rule(at, SeccompCmpOp::MaskedEq(kind), u64::from(libc::S_IFCHR))?,
                rule(at, SeccompCmpOp::MaskedEq(kind), u64::from(libc::S_IFBLK))?,
            ])
        };
        #[cfg(target_arch = "x86_64")]
        denied.insert(libc::SYS_mknod, device(1)?);
        denied.insert(libc::SYS_mknodat, device(2)?);
        let clone_flags = NAMESPACE_FLAGS
            .iter()
            .map(|flag| {
                #[allow(clippy::cast_sign_loss)] // flags are bit masks
                let flag = *flag as u64;
                rule(0, SeccompCmpOp::MaskedEq(flag), flag)
            })
            .collect::<Result<Vec<_>, _>>()?;
        denied.insert(libc::SYS_clone, clone_flags);
        if !network {
            #[allow(clippy::cast_sign_loss)] // AF_UNIX is 1
            let unix = libc::AF_UNIX as u64;
            denied.insert(libc::SYS_socket, vec![rule(0, SeccompCmpOp::Ne, unix)?]);
        }
        let eperm = SeccompFilter::new(
            denied,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )?;
        let enosys = SeccompFilter::new(
            BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        )?;
        Ok(Filters(vec![eperm.try_into()?, enosys.try_into()?]))
    };
    build().map_err(|err| format!("cannot build the seccomp filter: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_with_and_without_network() {
        for network in [false, true] {
            let filters = filters(network).expect("filters");
            assert_eq!(filters.0.len(), 2);
            let bytes = filters.as_bytes();
            assert!(bytes.iter().all(|b| !b.is_empty() && b.len() % 8 == 0));
        }
        // Networking off adds the socket rule.
        assert!(filters(false).expect("off").0[0].len() > filters(true).expect("on").0[0].len());
    }
}
