//! What the history says about each session: the site and user it was created for, when its
//! create was acknowledged, and each acknowledged write that must have ended it (an end, an
//! invalidate, or a verify that chose another session).

use std::collections::BTreeMap;

use sessync_proto::{SessionId, UserId};

use crate::history::{Call, History, Outcome, Ret};

/// A session a create acknowledged.
#[derive(Clone, Debug)]
pub(super) struct Created {
    pub(super) site: String,
    pub(super) user: UserId,
    pub(super) op: u64,
    pub(super) complete_ms: u64,
}

/// An acknowledged write that ended a session: its op id and completion.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ending {
    pub(super) op: u64,
    pub(super) complete_ms: u64,
}

/// Sessions by id, and what ended each.
#[derive(Default)]
pub(super) struct Known {
    pub(super) created: BTreeMap<SessionId, Created>,
    pub(super) endings: BTreeMap<SessionId, Vec<Ending>>,
}

impl Known {
    pub(super) fn of(h: &History) -> Known {
        let mut k = Known::default();
        for o in &h.ops {
            if let (
                Call::Create { user, .. },
                Outcome::Ok {
                    ret: Ret::Created { session, .. },
                },
            ) = (&o.call, &o.outcome)
            {
                k.created.entry(session.clone()).or_insert(Created {
                    site: o.site.clone(),
                    user: user.clone(),
                    op: o.id,
                    complete_ms: o.complete_ms,
                });
            }
        }
        for o in &h.ops {
            let Outcome::Ok { ret } = &o.outcome else {
                continue;
            };
            let ending = Ending {
                op: o.id,
                complete_ms: o.complete_ms,
            };
            let ended: Vec<SessionId> = match (&o.call, ret) {
                (Call::End { session }, _)
                | (
                    Call::Invalidate {
                        session: Some(session),
                        ..
                    },
                    _,
                ) => vec![session.clone()],
                (
                    Call::Invalidate {
                        user,
                        session: None,
                        ..
                    },
                    _,
                ) => k.created_before(&o.site, user, o.invoke_ms, None),
                (Call::Verify { user, .. }, Ret::Verified { kept, .. }) => {
                    k.created_before(&o.site, user, o.invoke_ms, Some(kept))
                }
                _ => continue,
            };
            for s in ended {
                k.endings.entry(s).or_default().push(ending);
            }
        }
        k
    }

    /// The sessions of `user` at `site` whose create was acknowledged before `t`, but `except`.
    fn created_before(
        &self,
        site: &str,
        user: &UserId,
        t: u64,
        except: Option<&SessionId>,
    ) -> Vec<SessionId> {
        self.created
            .iter()
            .filter(|(id, c)| {
                c.site == site && &c.user == user && c.complete_ms < t && Some(*id) != except
            })
            .map(|(id, _)| id.clone())
            .collect()
    }
}
