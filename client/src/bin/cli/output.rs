//! How `sessyncctl` prints answers: aligned plain-text tables or JSON.

use std::fmt::Write as _;

/// The `--output` choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document for scripts.
    Json,
}

/// A table of text cells with a header row, rendered with columns padded to their widest cell.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column headers.
    pub fn new<I, S>(headers: I) -> Self
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
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells.into_iter().map(Into::into).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as text: columns separated by two spaces, no trailing spaces, one line each.
    pub fn render(&self) -> String {
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
pub fn opt_cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
