//! Reading the cluster's state from the nodes' `GET /cluster/status` and `GET /cluster/digest`:
//! whether the live nodes agree on a leader, whether they have applied everything the leader
//! holds, and whether replicas at the same index hold the same state.
//!
//! The judgements are pure functions of the nodes' answers, unit-tested without processes.

use std::collections::BTreeSet;

use sessync_client::StateDigest;
use sessync_proto::api::ClusterStatus;

/// One node's answer, or why it gave none.
pub(crate) type View = (u64, Result<ClusterStatus, String>);

/// The leader every live member agrees on.
///
/// The leader is the node that says it is (the highest term wins if two do). Every node in that
/// leader's membership that answered must name it; nodes outside the membership (a node that
/// was added but not yet joined, or was removed) are not asked to agree. Every live node must
/// answer, so a node that is up but not answering holds the agreement back.
pub(crate) fn agreed_leader(views: &[View]) -> Result<&ClusterStatus, String> {
    let mut answered = Vec::new();
    for (id, v) in views {
        match v {
            Ok(s) => answered.push(s),
            Err(e) => return Err(format!("node {id} did not answer: {e}")),
        }
    }
    let leader = answered
        .iter()
        .filter(|s| s.role == "leader")
        .max_by_key(|s| s.term)
        .ok_or_else(|| {
            let seen: Vec<String> = answered
                .iter()
                .map(|s| format!("node {} is {} (leader {:?})", s.node_id, s.role, s.leader))
                .collect();
            format!("no node says it is the leader: {}", seen.join(", "))
        })?;
    let members: BTreeSet<u64> = leader.members.iter().map(|m| m.node_id).collect();
    for s in &answered {
        if members.contains(&s.node_id) && s.leader != Some(leader.node_id) {
            return Err(format!(
                "node {} says it is the leader in term {}, but node {} names {:?} in term {}",
                leader.node_id, leader.term, s.node_id, s.leader, s.term
            ));
        }
    }
    Ok(leader)
}

/// Whether every live member has applied the leader's whole log.
pub(crate) fn converged(views: &[View]) -> Result<(), String> {
    let leader = agreed_leader(views)?;
    let target = leader.last_log_index.unwrap_or(0);
    let members: BTreeSet<u64> = leader.members.iter().map(|m| m.node_id).collect();
    for s in views.iter().filter_map(|(_, v)| v.as_ref().ok()) {
        if !members.contains(&s.node_id) {
            continue;
        }
        let applied = s.last_applied.unwrap_or(0);
        if applied < target {
            return Err(format!(
                "node {} applied up to {applied}, the leader (node {}) holds up to {target}",
                s.node_id, leader.node_id
            ));
        }
    }
    Ok(())
}

/// How the state digests of several replicas compare.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DigestCompare {
    /// Every replica is at the same index with the same digest.
    Identical,
    /// Not all at the same index yet (why); compare again later.
    NotSameIndex(String),
    /// Two replicas at the same index differ: the invariant is broken.
    Diverged(String),
}

/// Compares the digests of replicas: equal digests at equal indexes.
pub(crate) fn compare_digests(digests: &[(u64, StateDigest)]) -> DigestCompare {
    for (i, (a, da)) in digests.iter().enumerate() {
        for (b, db) in &digests[i + 1..] {
            if da.applied == db.applied && da.digest != db.digest {
                return DigestCompare::Diverged(format!(
                    "nodes {a} and {b} both applied up to {:?} but hold different state \
                     ({} vs {})",
                    da.applied, da.digest, db.digest
                ));
            }
        }
    }
    let indexes: BTreeSet<Option<u64>> = digests.iter().map(|(_, d)| d.applied).collect();
    if indexes.len() > 1 {
        let seen: Vec<String> = digests
            .iter()
            .map(|(id, d)| format!("node {id} at {:?}", d.applied))
            .collect();
        return DigestCompare::NotSameIndex(seen.join(", "));
    }
    DigestCompare::Identical
}

#[cfg(test)]
mod tests {
    use sessync_proto::api::MemberStatus;
    use sessync_proto::SiteName;

    use super::*;

    fn status(id: u64, role: &str, leader: Option<u64>, term: u64, applied: u64) -> ClusterStatus {
        ClusterStatus {
            node_id: id,
            cluster_id: None,
            site: SiteName::parse_field("test", "site").unwrap(),
            role: role.into(),
            initialized: true,
            leader,
            leader_url: None,
            term,
            last_log_index: Some(10),
            last_applied: Some(applied),
            snapshot_index: None,
            members: (1..=3)
                .map(|n| MemberStatus {
                    node_id: n,
                    url: format!("http://127.0.0.1:{}", 7100 + n),
                    voter: true,
                    matched_index: None,
                })
                .collect(),
            policy_file_differs: Vec::new(),
            not_ready: Vec::new(),
            clock_offset_ms: None,
            clock_skewed: false,
            membership_index: None,
            bootstrap: None,
            version: String::new(),
            build: String::new(),
            draining: false,
        }
    }

    #[test]
    fn agreement_needs_every_member_to_name_the_leader() {
        let views = vec![
            (1, Ok(status(1, "follower", Some(2), 3, 10))),
            (2, Ok(status(2, "leader", Some(2), 3, 10))),
            (3, Ok(status(3, "follower", Some(2), 3, 10))),
        ];
        assert_eq!(agreed_leader(&views).unwrap().node_id, 2);

        let mut split = views.clone();
        split[2].1 = Ok(status(3, "candidate", None, 4, 10));
        assert!(agreed_leader(&split)
            .unwrap_err()
            .contains("node 3 names None"));

        let mut silent = views.clone();
        silent[0].1 = Err("connection refused".into());
        assert!(agreed_leader(&silent)
            .unwrap_err()
            .contains("node 1 did not answer"));

        let none = vec![(1, Ok(status(1, "follower", None, 1, 0)))];
        assert!(agreed_leader(&none).unwrap_err().contains("no node says"));
    }

    #[test]
    fn nodes_outside_the_membership_need_not_agree() {
        let mut fresh = status(4, "learner", None, 0, 0);
        fresh.initialized = false;
        let views = vec![
            (1, Ok(status(1, "leader", Some(1), 2, 10))),
            (2, Ok(status(2, "follower", Some(1), 2, 10))),
            (4, Ok(fresh)),
        ];
        assert_eq!(agreed_leader(&views).unwrap().node_id, 1);
        assert!(converged(&views).is_ok());
    }

    #[test]
    fn stale_leader_loses_to_higher_term() {
        let views = vec![
            (1, Ok(status(1, "leader", Some(1), 2, 10))),
            (2, Ok(status(2, "leader", Some(2), 3, 10))),
            (3, Ok(status(3, "follower", Some(2), 3, 10))),
        ];
        // Node 1 still believes itself leader of term 2: not agreed yet.
        assert!(agreed_leader(&views).is_err());
    }

    #[test]
    fn convergence_compares_applied_with_the_leaders_log() {
        let views = vec![
            (1, Ok(status(1, "leader", Some(1), 2, 10))),
            (2, Ok(status(2, "follower", Some(1), 2, 9))),
        ];
        assert!(converged(&views)
            .unwrap_err()
            .contains("node 2 applied up to 9"));
        let views = vec![
            (1, Ok(status(1, "leader", Some(1), 2, 10))),
            (2, Ok(status(2, "follower", Some(1), 2, 10))),
        ];
        assert!(converged(&views).is_ok());
    }

    fn digest(applied: u64, d: &str) -> StateDigest {
        StateDigest {
            applied: Some(applied),
            digest: d.into(),
        }
    }

    #[test]
    fn digests_compare_at_equal_indexes() {
        let same = vec![
            (1, digest(5, "aa")),
            (2, digest(5, "aa")),
            (3, digest(5, "aa")),
        ];
        assert_eq!(compare_digests(&same), DigestCompare::Identical);
        let behind = vec![(1, digest(6, "bb")), (2, digest(5, "aa"))];
        assert!(matches!(
            compare_digests(&behind),
            DigestCompare::NotSameIndex(_)
        ));
        let diverged = vec![
            (1, digest(6, "bb")),
            (2, digest(5, "aa")),
            (3, digest(5, "ab")),
        ];
        match compare_digests(&diverged) {
            DigestCompare::Diverged(m) => assert!(m.contains("nodes 2 and 3"), "{m}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
