//! The `ChatStore` conformance suite.
//!
//! Scenarios are plain `pub async fn name(store: StoreRef)` functions grouped by area. A
//! backend runs all of them with one macro call, which expands one named `#[test]`-style
//! function per scenario (so test output lists them by name) and a completeness check that
//! fails if a scenario exists in the sources but is missing from the macro's list:
//!
//! ```text
//! // In-memory: a fresh store per test.
//! chatd_core::store_conformance_tests!(
//!     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//!     || chatd_store_memory::InMemoryChatStore::new()
//! );
//! // PostgreSQL: a fresh database per test.
//! chatd_core::store_conformance_tests!(
//!     #[sqlx::test(migrator = "chatd_store_postgres::MIGRATOR")]
//!     |pool: sqlx::PgPool| chatd_store_postgres::PostgresChatStore::new(pool)
//! );
//! ```
//!
//! Backend differences are parameters of the macro call, never forked scenarios.

pub mod calls;
pub mod chats;
pub mod client_ids;
pub mod config;
pub mod diff;
pub mod fairness;
pub mod feed;
pub mod files;
pub mod history;
pub mod input;
pub mod intents;
pub mod labels;
pub mod lifecycle;
pub mod messages;
pub mod retention;
pub mod secrets;
pub mod spend_holds;
mod support;
pub mod usage;
pub mod worker;

pub use support::{Fixture, StoreRef, assert_complete, defined_scenarios};

/// Expands the whole conformance suite for a backend. See the [module docs](self).
#[macro_export]
macro_rules! store_conformance_tests {
    ($(#[$attr:meta])* || $make:expr) => {
        $crate::__store_conformance_all! { [$(#[$attr])*] [] [$make] }
    };
    ($(#[$attr:meta])* |$($arg:ident : $ty:ty),*| $make:expr) => {
        $crate::__store_conformance_all! { [$(#[$attr])*] [$($arg : $ty),*] [$make] }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_all {
    ($attrs:tt $args:tt $make:tt) => {
        $crate::__store_conformance_group! { $attrs $args $make chats [
            create_with_message_is_pending,
            create_without_message_is_waiting,
            create_stores_system_prompt_for_the_model_only,
            create_uses_explicit_title_and_model_config,
            create_without_default_config_fails,
            create_with_unknown_model_config_is_not_found,
            create_with_deleted_model_config_is_not_found,
            create_child_links_parent_and_root,
            create_child_of_unknown_parent_is_not_found,
            concurrent_children_never_pass_the_open_children_limit,
            create_rejects_invalid_content,
            get_unknown_chat_is_not_found,
            list_filters_by_owner_status_and_archived,
            list_paginates_without_gaps_or_repeats,
            list_roots_only_hides_children,
            update_title_and_workspace,
            update_title_if_expected_never_overwrites,
            update_rejects_empty_title,
            archive_root_archives_whole_tree,
            archive_child_archives_only_the_child,
            delete_removes_chat_and_orphans_children,
            list_children_returns_direct_children,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make messages [
            message_ids_increase_across_chats,
            list_messages_after_cursor_with_visibility,
            list_messages_respects_limit,
            list_messages_of_unknown_chat_is_not_found,
            content_round_trips_every_part_type,
            usage_and_context_limit_round_trip,
            message_model_config_sets_last_model_config,
            prompt_without_compaction_keeps_model_visible_rows,
            prompt_after_one_compaction,
            prompt_after_two_compactions,
            compaction_rows_have_fixed_roles_and_visibility,
            compaction_with_lost_lease_writes_nothing,
            idle_compaction_refused_while_work_is_pending,
            malformed_compaction_is_rejected,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make intents [
            a_message_to_an_idle_chat_with_a_queue_waits_its_turn,
            a_full_queue_on_an_idle_chat_takes_a_message_and_stays_at_its_cap,
            send_to_waiting_inserts_and_pends,
            send_to_error_clears_last_error,
            send_to_completed_reopens,
            send_to_running_queues,
            send_interrupt_to_pending_inserts_directly,
            send_interrupt_to_running_queues_and_stops_the_turn,
            send_to_paused_queues,
            send_rejects_empty_content,
            queue_cap_refuses_the_twenty_first,
            queue_promotes_fifo_on_release,
            promote_queued_on_idle_chat_inserts,
            promote_queued_on_running_chat_waits_for_the_stop,
            promote_unknown_queued_message_is_not_found,
            delete_queued_returns_the_rest,
            edit_keeps_id_truncates_later_rows_and_clears_queue,
            edit_refuses_non_user_messages,
            edit_message_of_another_chat_is_not_found,
            edit_revokes_the_running_lease,
            interrupt_running_stops_the_turn_to_waiting,
            interrupt_keeps_pending,
            pause_idle_and_resume_idle,
            pause_running_applies_at_release,
            resume_with_queue_promotes_the_head,
            resume_with_unanswered_message_is_pending,
            resume_refused_unless_paused,
            complete_and_reopen,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make history [
            an_edit_keeps_what_it_cut_with_its_revision,
            deleted_messages_are_read_with_the_usual_filters,
            deleted_messages_belong_to_their_chat,
            a_fork_copies_the_history_up_to_its_message,
            a_fork_at_a_question_answers_it_and_keeps_calls_with_their_results,
            a_fork_and_its_source_are_independent,
            a_fork_needs_a_message_of_the_current_history,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make labels [
            labels_are_set_replaced_and_bounded,
            the_list_filters_by_every_label,
            search_finds_titles_and_messages_of_the_owner_only,
            filtered_lists_page_without_gaps_or_repeats,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make files [
            files_are_stored_with_their_sniffed_type,
            files_are_scoped_to_their_owner,
            a_chat_holds_at_most_its_cap,
            files_go_with_their_chat,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make retention [
            retention_is_off_by_default_and_waits_for_its_periods,
            idle_roots_are_archived_with_their_trees,
            archived_chats_are_purged_with_a_tombstone,
            deleted_messages_are_purged_by_age,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make worker [
            acquire_claims_oldest_first_and_sets_ownership,
            acquire_respects_the_limit,
            acquisition_race_claims_each_chat_once,
            heartbeat_is_batched_and_reports_lost_leases,
            commit_step_writes_assistant_and_tool_rows,
            commit_step_with_wrong_roles_writes_nothing,
            release_finished_turn_to_waiting,
            release_failure_keeps_the_queue,
            release_shutdown_returns_to_pending_without_error,
            recover_stale_touches_only_stale_running_chats,
            zombie_after_recovery_is_fenced,
            zombie_after_reacquisition_is_fenced,
            parts_append_and_read_after_a_position,
            parts_out_of_order_are_refused,
            parts_are_cleared_when_the_step_commits,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make config [
            provider_crud_with_one_row_per_kind,
            provider_base_url_is_validated,
            provider_key_update_and_redaction,
            delete_provider_cascades_unused_configs,
            delete_provider_in_use_is_a_conflict,
            first_model_config_becomes_default,
            new_default_demotes_the_old_one,
            deleting_the_default_promotes_the_oldest,
            demoting_the_default_promotes_the_oldest_other,
            model_config_validation_errors,
            model_config_requires_a_configured_provider,
            list_model_configs_hides_disabled_and_deleted,
            model_config_options_round_trip,
            options_the_provider_cannot_express_are_refused,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make diff [
            diff_reference_empty_fields_keep_old_values,
            diff_refresh_sets_counts_and_times,
            claim_stale_diff_statuses_is_exclusive,
            diff_status_of_unknown_chat_is_not_found,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make feed [
            feed_announces_committed_intents,
            feed_is_silent_about_failed_intents,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make lifecycle [
            turn_endings_are_recorded_and_cleared_by_the_next_turn,
            lost_and_edited_turns_end_without_their_worker,
            chat_list_changes_resume_by_position,
            chat_list_changes_follow_status_but_not_rewrites_of_the_same_title,
            pruned_tombstones_expire_older_list_cursors,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make input [
            user_input_is_text_or_file_parts_without_nul,
            user_input_size_limits_are_enforced,
            nul_in_model_and_tool_output_is_stored_replaced,
            a_failure_text_with_nul_is_released,
            oversized_tool_results_are_cut_with_a_note,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make calls [
            a_waiting_turn_is_requires_action_without_a_lease,
            the_last_decision_makes_the_chat_pending,
            bad_decisions_are_refused_and_apply_nothing,
            deadlines_answer_calls_and_pend_the_chat,
            interrupt_while_waiting_answers_every_call,
            a_message_while_waiting_queues_or_ends_the_step,
            edit_while_waiting_drops_the_calls,
            pause_keeps_calls_open_and_resume_returns_to_them,
            records_survive_a_stop_and_close_before_a_new_message,
            the_closing_write_clears_the_records_and_is_fenced,
            a_decision_racing_the_sweep_decides_each_call_once,
            an_interrupt_at_release_closes_the_records,
            a_decision_before_the_release_leaves_the_chat_pending,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make client_ids [
            a_client_id_stays_with_its_message,
            a_bad_client_id_is_refused,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make fairness [
            acquisition_interleaves_owners,
            running_caps_hold,
            a_capped_owner_does_not_hide_others_behind_its_backlog,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make usage [
            every_call_is_recorded_and_the_totals_are_their_sum,
            a_price_change_does_not_rewrite_old_records,
            records_outlive_edits_and_deletions,
            reports_group_and_filter,
            a_bad_record_is_refused,
            an_estimate_is_marked_as_one,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make spend_holds [
            holds_are_seen_by_the_owners_other_chats,
            a_steps_record_settles_its_hold,
            a_hold_lapses_with_its_turn,
            admissions_of_one_owner_are_one_at_a_time,
        ] }
        $crate::__store_conformance_group! { $attrs $args $make secrets [
            keys_are_encrypted_at_rest_under_a_cipher,
            a_ciphertext_copied_to_another_row_does_not_decrypt,
            rotation_reencrypts_every_key_and_keeps_them_usable,
            revoked_or_unknown_keys_stop_the_store_at_start_up,
            a_key_is_bound_to_its_base_url,
            a_revoked_key_never_encrypts,
        ] }

        #[test]
        fn conformance_suite_is_complete() {
            $crate::testing::store::assert_complete(&$crate::__store_conformance_names!());
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_group {
    ($attrs:tt $args:tt $make:tt $module:ident [$($name:ident),* $(,)?]) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $( $crate::__store_conformance_one! { $attrs $args $make $module $name } )*
            /// Names expanded by this group.
            pub(super) const NAMES: &[&str] = &[$(concat!(stringify!($module), "::", stringify!($name))),*];
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_one {
    ([$(#[$attr:meta])*] [$($arg:ident : $ty:ty),*] [$make:expr] $module:ident $name:ident) => {
        $(#[$attr])*
        async fn $name($($arg : $ty),*) {
            let store: $crate::testing::store::StoreRef = ::std::sync::Arc::new($make);
            $crate::testing::store::$module::$name(store).await;
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_names {
    () => {
        [
            chats::NAMES,
            messages::NAMES,
            intents::NAMES,
            secrets::NAMES,
            input::NAMES,
            worker::NAMES,
            config::NAMES,
            diff::NAMES,
            feed::NAMES,
            lifecycle::NAMES,
            calls::NAMES,
            client_ids::NAMES,
            fairness::NAMES,
            usage::NAMES,
            spend_holds::NAMES,
            history::NAMES,
            labels::NAMES,
            retention::NAMES,
            files::NAMES,
        ]
        .concat()
    };
}
