//! Walks the merged config tree (file under environment) one table at a time, converting each
//! value to its Rust type and recording every problem under the key's dotted name instead of
//! stopping at the first, so `check` can list them all. Keys left unread in a table are unknown.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Dict, Value};

use crate::convert::{closest, describe, to_duration, to_string, to_whole};
use crate::env::Overrides;
use crate::error::ConfigError;

/// What one load or check has seen: where relative file paths start, the environment
/// overrides, and the problems found so far.
pub(crate) struct Ctx {
    pub env: Overrides,
    pub base_dir: PathBuf,
    problems: RefCell<Vec<ConfigError>>,
}

impl Ctx {
    pub(crate) fn new(env: Overrides, base_dir: PathBuf) -> Self {
        Ctx {
            env,
            base_dir,
            problems: RefCell::new(Vec::new()),
        }
    }

    pub(crate) fn report(&self, e: ConfigError) {
        self.problems.borrow_mut().push(e);
    }

    /// Reports a bad value of `key`, saying which variable set it if one did.
    pub(crate) fn invalid(&self, key: &str, message: impl Into<String>) {
        let mut message = message.into();
        if let Some(var) = self.env.var_for(key) {
            message.push_str(&format!(" (set by {var})"));
        }
        self.report(ConfigError::invalid(key, message));
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.borrow().is_empty()
    }

    /// The problems, those with the file as a whole first, then unknown keys, then the rest in
    /// the order the keys were read.
    pub(crate) fn into_problems(self) -> Vec<ConfigError> {
        let mut problems = self.problems.into_inner();
        problems.sort_by_key(ConfigError::rank);
        problems
    }
}

/// The outcome of reading one key.
pub(crate) enum Read<T> {
    /// The key is absent.
    Missing,
    /// The key is present but its value is wrong (already reported).
    Bad,
    Got(T),
}

impl<T> Read<T> {
    /// The value, or `default` when absent; `None` when bad.
    pub(crate) fn or(self, default: T) -> Option<T> {
        match self {
            Read::Missing => Some(default),
            Read::Bad => None,
            Read::Got(v) => Some(v),
        }
    }

    /// The value; reports `name` as required when absent.
    pub(crate) fn require(self, table: &Table<'_>, name: &str) -> Option<T> {
        match self {
            Read::Missing => {
                table.invalid(name, "is required");
                None
            }
            Read::Bad => None,
            Read::Got(v) => Some(v),
        }
    }

    pub(crate) fn is_missing(&self) -> bool {
        matches!(self, Read::Missing)
    }
}

/// One table of the tree, e.g. the top level, `[policy]` or `api_keys[1]`.
pub(crate) struct Table<'c> {
    path: String,
    entries: Dict,
    known: Vec<&'static str>,
    ctx: &'c Ctx,
}

impl<'c> Table<'c> {
    pub(crate) fn root(entries: Dict, ctx: &'c Ctx) -> Self {
        Self::child(String::new(), entries, ctx)
    }

    fn child(path: String, entries: Dict, ctx: &'c Ctx) -> Self {
        Table {
            path,
            entries,
            known: Vec::new(),
            ctx,
        }
    }

    pub(crate) fn ctx(&self) -> &'c Ctx {
        self.ctx
    }

    /// Whether the table has no keys (left to read): an absent section reads as empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// This table's own dotted name (`api_keys[1]`), empty for the top level.
    pub(crate) fn here(&self) -> &str {
        &self.path
    }

    /// The dotted name of `name` in this table.
    pub(crate) fn key(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// Reports a problem with `name` of this table.
    pub(crate) fn invalid(&self, name: &str, message: impl Into<String>) {
        self.ctx.invalid(&self.key(name), message);
    }

    /// Applies a check or conversion to a value read earlier; a failure is reported on `name`.
    pub(crate) fn validate<T, U>(
        &self,
        name: &str,
        value: Option<T>,
        f: impl FnOnce(T) -> Result<U, String>,
    ) -> Option<U> {
        match f(value?) {
            Ok(u) => Some(u),
            Err(message) => {
                self.invalid(name, message);
                None
            }
        }
    }

    fn take(&mut self, name: &'static str) -> Option<Value> {
        self.known.push(name);
        self.entries.remove(name)
    }

    fn convert<T>(
        &self,
        name: &str,
        v: Value,
        f: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Read<T> {
        match f(&v) {
            Ok(t) => Read::Got(t),
            Err(message) => {
                self.invalid(name, message);
                Read::Bad
            }
        }
    }

    fn read<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Read<T> {
        match self.take(name) {
            None => Read::Missing,
            Some(v) => self.convert(name, v, f),
        }
    }

    pub(crate) fn string(&mut self, name: &'static str) -> Read<String> {
        self.read(name, to_string)
    }

    /// A non-negative whole number that fits `T`.
    pub(crate) fn whole<T: TryFrom<u128>>(&mut self, name: &'static str) -> Read<T> {
        self.read(name, to_whole)
    }

    pub(crate) fn flag(&mut self, name: &'static str) -> Read<bool> {
        self.read(name, |v| match v {
            Value::Bool(_, b) => Ok(*b),
            Value::String(_, s) if s.trim().eq_ignore_ascii_case("true") => Ok(true),
            Value::String(_, s) if s.trim().eq_ignore_ascii_case("false") => Ok(false),
            other => Err(format!("must be true or false, not {}", describe(other))),
        })
    }

    pub(crate) fn duration(&mut self, name: &'static str) -> Read<Duration> {
        self.read(name, to_duration)
    }

    /// One of the named `choices`.
    pub(crate) fn choice<T: Copy>(&mut self, name: &'static str, choices: &[(&str, T)]) -> Read<T> {
        self.read(name, |v| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            let wanted = names.join(", ");
            match v {
                Value::String(_, s) => choices
                    .iter()
                    .find(|(n, _)| *n == s.trim())
                    .map(|(_, t)| *t)
                    .ok_or_else(|| format!("{s:?} is not one of {wanted}")),
                other => Err(format!("must be one of {wanted}, not {}", describe(other))),
            }
        })
    }

    /// A list of strings; a bad item is reported as `name[i]`.
    pub(crate) fn strings(&mut self, name: &'static str) -> Read<Vec<String>> {
        let items = match self.take(name) {
            None => return Read::Missing,
            Some(Value::Array(_, items)) => items,
            Some(other) => {
                self.invalid(
                    name,
                    format!("must be a list of strings, not {}", describe(&other)),
                );
                return Read::Bad;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match to_string(item) {
                Ok(s) => out.push(s),
                Err(message) => {
                    self.invalid(&format!("{name}[{i}]"), message);
                    ok = false;
                }
            }
        }
        if ok {
            Read::Got(out)
        } else {
            Read::Bad
        }
    }

    /// A table of strings under keys of any name (`{ 1 = "https://a", 2 = "https://b" }`); a
    /// bad item is reported as `name.key`.
    pub(crate) fn string_map(&mut self, name: &'static str) -> Read<BTreeMap<String, String>> {
        let items = match self.take(name) {
            None => return Read::Missing,
            Some(Value::Dict(_, items)) => items,
            Some(other) => {
                self.invalid(
                    name,
                    format!("must be a table of strings, not {}", describe(&other)),
                );
                return Read::Bad;
            }
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, item) in &items {
            match to_string(item) {
                Ok(s) => {
                    out.insert(key.clone(), s);
                }
                Err(message) => {
                    self.invalid(&format!("{name}.{key}"), message);
                    ok = false;
                }
            }
        }
        if ok {
            Read::Got(out)
        } else {
            Read::Bad
        }
    }

    /// A file path. From the file it is resolved against the config file's directory; from the
    /// environment it is used as given (relative to the working directory).
    pub(crate) fn file(&mut self, name: &'static str) -> Read<PathBuf> {
        let key = self.key(name);
        match self.string(name) {
            Read::Got(s) => match self.resolve(&key, &s) {
                Ok(p) => Read::Got(p),
                Err(message) => {
                    self.invalid(name, message);
                    Read::Bad
                }
            },
            Read::Missing => Read::Missing,
            Read::Bad => Read::Bad,
        }
    }

    /// A list of file paths, each resolved against the config file's directory.
    pub(crate) fn files(&mut self, name: &'static str) -> Read<Vec<PathBuf>> {
        let list = match self.strings(name) {
            Read::Got(list) => list,
            Read::Missing => return Read::Missing,
            Read::Bad => return Read::Bad,
        };
        let mut out = Vec::with_capacity(list.len());
        for (i, s) in list.iter().enumerate() {
            let key = format!("{name}[{i}]");
            match self.resolve(&self.key(&key), s) {
                Ok(p) => out.push(p),
                Err(message) => self.invalid(&key, message),
            }
        }
        if out.len() == list.len() {
            Read::Got(out)
        } else {
            Read::Bad
        }
    }

    fn resolve(&self, key: &str, raw: &str) -> Result<PathBuf, String> {
        if raw.trim().is_empty() {
            return Err("must not be empty".to_owned());
        }
        let path = PathBuf::from(raw);
        if self.ctx.env.var_for(key).is_some() {
            Ok(path)
        } else {
            Ok(self.ctx.base_dir.join(path))
        }
    }

    /// A sub-table such as `[policy]`; an empty one when absent (so every default applies).
    pub(crate) fn table(&mut self, name: &'static str) -> Table<'c> {
        let key = self.key(name);
        let entries = match self.take(name) {
            None => Dict::new(),
            Some(Value::Dict(_, d)) => d,
            Some(other) => {
                self.invalid(
                    name,
                    format!("must be a table ([{key}]), not {}", describe(&other)),
                );
                Dict::new()
            }
        };
        Table::child(key, entries, self.ctx)
    }

    /// An array of tables such as `[[api_keys]]`; items are named `name[i]`.
    pub(crate) fn tables(&mut self, name: &'static str) -> Vec<Table<'c>> {
        let key = self.key(name);
        let items = match self.take(name) {
            None => return Vec::new(),
            Some(Value::Array(_, items)) => items,
            Some(other) => {
                self.invalid(
                    name,
                    format!(
                        "must be an array of tables ([[{key}]]), not {}",
                        describe(&other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_key = format!("{key}[{i}]");
            match item {
                Value::Dict(_, d) => out.push(Table::child(item_key, d, self.ctx)),
                other => self.ctx.invalid(
                    &item_key,
                    format!("must be a table, not {}", describe(&other)),
                ),
            }
        }
        out
    }

    /// Reports every key of this table that was not read as unknown.
    pub(crate) fn finish(self) {
        for name in self.entries.keys() {
            let suggestion = closest(name, &self.known).map(|k| self.key(k));
            self.ctx.report(ConfigError::UnknownKey {
                key: self.key(name),
                suggestion,
            });
        }
    }
}
