//! Column alignment, as Go's `text/tabwriter` does it for kubectl.
//!
//! kubectl never computes column widths itself: it writes cells separated by tabs and lets `tabwriter` align
//! them. The rule ("elastic tabstops"): a column is a run of consecutive lines that all have a cell there; its
//! width is that of its widest cell plus padding. The last cell of a line is never padded, so lines carry no
//! trailing spaces. Following the same rule is what makes `kubelab get` and `kubelab describe` line up exactly
//! like kubectl's output, even for indented blocks such as the Events table of `describe`.

/// Aligns tab-separated text.
#[derive(Debug, Clone)]
pub struct TabWriter {
    /// The narrowest a column may be, padding included.
    min_width: usize,
    /// Spaces added after the widest cell of a column.
    padding: usize,
    /// Keep column widths from one [`TabWriter::format`] call to the next (Go's `RememberWidths`), so that the
    /// rows `get -w` prints one at a time stay under their headers.
    remember: bool,
    /// The widths remembered, by column.
    widths: Vec<usize>,
}

impl TabWriter {
    /// kubectl's table printer: `tabwriter.NewWriter(out, 6, 4, 3, ' ', tabwriter.RememberWidths)`.
    pub fn table() -> Self {
        TabWriter { min_width: 6, padding: 3, remember: true, widths: Vec::new() }
    }

    /// kubectl's describe: `tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)`.
    pub fn describe() -> Self {
        TabWriter { min_width: 0, padding: 2, remember: false, widths: Vec::new() }
    }

    /// Aligns `text` (lines of tab-separated cells).
    pub fn format(&mut self, text: &str) -> String {
        let ends_with_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<Vec<&str>> = body.split('\n').map(|line| line.split('\t').collect()).collect();
        let mut out = String::new();
        self.block(&lines, &mut Vec::new(), &mut out);
        if !ends_with_newline {
            out.pop();
        }
        out
    }

    /// Lays out `lines`, whose columns left of `widths.len()` have known widths: finds each run of lines that
    /// has a cell in the next column, measures it, and recurses for the columns further right.
    fn block(&mut self, lines: &[Vec<&str>], widths: &mut Vec<usize>, out: &mut String) {
        let column = widths.len();
        // A line has a cell in `column` only if that cell ends with a tab, i.e. is not the line's last cell.
        let has_cell = |line: &Vec<&str>| column + 1 < line.len();
        let mut printed = 0;
        let mut this = 0;
        while this < lines.len() {
            if !has_cell(&lines[this]) {
                this += 1;
                continue;
            }
            write_lines(&lines[printed..this], widths, out);
            let start = this;
            let mut width = self.min_width;
            while this < lines.len() && has_cell(&lines[this]) {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            if self.remember {
                if self.widths.len() <= column {
                    self.widths.resize(column + 1, 0);
                }
                width = width.max(self.widths[column]);
                self.widths[column] = width;
            }
            widths.push(width);
            self.block(&lines[start..this], widths, out);
            widths.pop();
            printed = this;
        }
        write_lines(&lines[printed..], widths, out);
    }
}

/// Writes lines whose columns are all measured: each cell padded to its column's width, the last one as is.
fn write_lines(lines: &[Vec<&str>], widths: &[usize], out: &mut String) {
    for line in lines {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j).filter(|_| j + 1 < line.len()) {
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(cell.chars().count())));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_plus_three_spaces() {
        let text = "NAME\tREADY\tUP-TO-DATE\tAVAILABLE\tAGE\nweb\t3/3\t3\t3\t10s\n";
        assert_eq!(
            TabWriter::table().format(text),
            "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\nweb    3/3     3            3           10s\n"
        );
    }

    #[test]
    fn narrow_columns_get_the_minimum_width_and_the_last_cell_is_not_padded() {
        assert_eq!(TabWriter::table().format("A\tB\nx\ty"), "A     B\nx     y");
    }

    #[test]
    fn a_line_without_tabs_ends_the_column_block() {
        let text = "Name:\tweb\nNamespace:\tdefault\nPod Template:\n  Labels:\tapp=web\n";
        assert_eq!(
            TabWriter::describe().format(text),
            "Name:       web\nNamespace:  default\nPod Template:\n  Labels:  app=web\n"
        );
    }

    #[test]
    fn remembered_widths_keep_later_rows_under_their_headers() {
        let mut writer = TabWriter::table();
        writer.format("NAME\tSTATUS\tAGE\nweb-1\tRunning\t5s\n");
        assert_eq!(writer.format("w\tx\t1s\n"), "w       x         1s\n");
    }
}
