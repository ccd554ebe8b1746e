//! Network faults between real processes on loopback: small TCP proxies that stand in front of
//! a node and cut, delay, drop or corrupt what passes.
//!
//! - [`Faults`] and [`LinkFault`]: the fault table of a test cluster's directed node-to-node
//!   links, shared by its proxies; a change reaches open connections at once.
//! - [`NodeProxy`]: one in front of each node of a proxied cluster
//!   ([`crate::ClusterOptions::proxied`]). It tells the sending node by the first request's
//!   `x-sessync-from` (or `x-sessync-forwarded-by`) header, and applies the fault of the link
//!   (sender → this node) to the whole connection.
//! - [`SiteProxy`]: one in front of a peer site's node, for federation faults ([`SiteMode`]);
//!   it also keeps the last federation requests that passed, to replay them verbatim.
//!
//! A link `(a, b)` carries the requests node `a` sends node `b` and `b`'s answers to them:
//! cutting `(a, b)` silences both, while `b`'s own requests to `a` (link `(b, a)`) still pass.
//! Sender 0 is anything that names no node (a client).
//!
//! Plain HTTP only: the proxies read request heads, which TLS hides.

mod faults;
mod http;
mod node_proxy;
mod pipe;
mod site_proxy;
#[cfg(test)]
mod tests;

pub use faults::{Faults, LinkFault};
pub use node_proxy::NodeProxy;
pub use site_proxy::{SiteMode, SiteProxy};
