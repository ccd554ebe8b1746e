//! How `sessyncctl` prints answers: aligned plain-text tables or JSON.

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;
use sessync_proto::SessionView;

/// The `--output` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts: one object per line.
    Json,
}

/// A table of text cells with a header row, rendered with columns padded to their widest cell.
#[derive(Debug, Default)]
pub(super) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub(super) fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are empty, extra cells are dropped.
    pub(super) fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text: columns separated by two spaces, no trailing spaces, one line each.
    pub(super) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let _ = write!(line, "{cell:<w$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// An optional number as a cell: the number, or `-`.
pub(super) fn opt_cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Writes `value` as one line of compact JSON.
pub(super) fn json_line(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(value)?;
    line.push('\n');
    out.write_all(line.as_bytes())?;
    Ok(())
}

/// A value's snake_case wire name (`active`, `idle_timeout`), for enums that serialize as one.
pub(super) fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

/// A table of sessions: one row each.
pub(super) fn session_table<'a>(sessions: impl IntoIterator<Item = &'a SessionView>) -> Table {
    let mut t = Table::new([
        "SESSION",
        "USER",
        "STATE",
        "REASON",
        "DEVICE",
        "CREATED",
        "LAST SEEN",
        "IDLE ENDS",
        "EXPIRES",
    ]);
    for s in sessions {
        t.row([
            s.session_id.to_string(),
            s.user_id.to_string(),
            wire_name(&s.state),
            s.end_reason
                .map_or_else(|| "-".to_owned(), |r| r.as_str().to_owned()),
            s.device.name.clone().unwrap_or_else(|| "-".to_owned()),
            s.created_at.to_rfc3339(),
            s.last_seen_at.to_rfc3339(),
            s.idle_expires_at.to_rfc3339(),
            s.expires_at.to_rfc3339(),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_compact() {
        let mut out = Vec::new();
        json_line(&mut out, &serde_json::json!({"a": 1, "b": [1, 2]})).unwrap();
        json_line(&mut out, &serde_json::json!({"c": "x"})).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1,\"b\":[1,2]}\n{\"c\":\"x\"}\n"
        );
        assert_eq!(wire_name(&sessync_proto::SessionState::Active), "active");
    }

    #[test]
    fn columns_align_and_lines_are_trimmed() {
        let mut t = Table::new(["NODE", "ROLE", "TERM"]);
        t.row(["1", "leader", "3"]);
        t.row(["12", "follower"]);
        assert_eq!(
            t.render(),
            "NODE  ROLE      TERM\n\
             1     leader    3\n\
             12    follower\n"
        );
    }

    #[test]
    fn empty_table_is_its_header() {
        assert_eq!(Table::new(["A", "B"]).render(), "A  B\n");
    }

    #[test]
    fn optional_cells() {
        assert_eq!(opt_cell(Some(5u64)), "5");
        assert_eq!(opt_cell::<u64>(None), "-");
    }
}
