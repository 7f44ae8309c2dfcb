//! A reader of one numeric column of a small CSV file, and the filling of its gaps.
//!
//! The first line is the header (names, optionally in double quotes); every later non-blank
//! line is a row with as many comma-separated fields as the header. No field holds a comma or
//! a quoted comma (the shipped series do not). An empty field in the chosen column is a gap
//! (`None`); anything else must be a finite number.
//!
//! Every malformed input is an error naming the file, the line and the column (1-based, in
//! characters) where the trouble starts: text in the number column, a row with too few or too
//! many fields; and the file as a whole for an empty file, a missing column or no row.

#[path = "../common/file_error.rs"]
mod file_error;

/// What is wrong with a CSV text, and where (shared with the other data example).
pub type CsvError = file_error::FileError;

/// The values of column `name` of the CSV `text` (`file` names it in errors), a gap as `None`.
pub fn column(file: &str, text: &str, name: &str) -> Result<Vec<Option<f64>>, CsvError> {
    let err = |line, column, message: String| CsvError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    let mut lines = (text.lines().enumerate()).filter(|(_, l)| !l.trim().is_empty());
    let (header_index, header) = lines
        .next()
        .ok_or_else(|| err(0, 0, "the file is empty".into()))?;
    let names: Vec<String> = (header.split(','))
        .map(|n| n.trim().trim_matches('"').to_owned())
        .collect();
    let wanted = names.iter().position(|n| n == name).ok_or_else(|| {
        let message = format!("no column {name:?} in the header {names:?}");
        err(header_index + 1, 0, message)
    })?;
    let mut values = Vec::new();
    for (index, line) in lines {
        let fields = fields(line.trim_end_matches('\r'));
        if fields.len() != names.len() {
            let column = fields.last().map_or(1, |f| f.0);
            let message = format!(
                "{} fields expected as in the header, found {}",
                names.len(),
                fields.len()
            );
            return Err(err(index + 1, column, message));
        }
        let (column, text) = fields[wanted];
        let text = text.trim();
        if text.is_empty() {
            values.push(None);
            continue;
        }
        match text.trim_matches('"').parse::<f64>() {
            Ok(v) if v.is_finite() => values.push(Some(v)),
            _ => {
                let message = format!("column {name:?}: expected a finite number, found {text:?}");
                return Err(err(index + 1, column, message));
            }
        }
    }
    if values.is_empty() {
        return Err(err(0, 0, "no row after the header".into()));
    }
    Ok(values)
}

/// The pieces of `line` between commas, each with its column (from 1, in characters).
fn fields(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut column = 1;
    for piece in line.split(',') {
        out.push((column, piece));
        column += piece.chars().count() + 1;
    }
    out
}

/// The series with its gaps filled by linear interpolation between the nearest values on
/// either side (the rows are taken as evenly spaced, as the weekly and yearly series are);
/// gaps before the first value or after the last are dropped. `Err` if no value is known.
pub fn fill_gaps(values: &[Option<f64>]) -> Result<Vec<f64>, String> {
    let first = values
        .iter()
        .position(Option::is_some)
        .ok_or("every value is missing")?;
    let last = values.iter().rposition(Option::is_some).unwrap_or(first);
    let mut out = Vec::with_capacity(last - first + 1);
    let mut previous = first;
    for i in first..=last {
        match values[i] {
            Some(v) => {
                out.push(v);
                previous = i;
            }
            None => {
                let next = (i..=last).find(|&j| values[j].is_some()).unwrap_or(last);
                let (a, b) = (values[previous].unwrap_or(0.0), values[next].unwrap_or(0.0));
                let w = (i - previous) as f64 / (next - previous) as f64;
                out.push(a + w * (b - a));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str, name: &str) -> CsvError {
        column("s.csv", text, name).expect_err("malformed")
    }

    #[test]
    fn a_column_with_gaps_and_quoted_names_is_read() {
        let text = "\"YEAR\",\"co2\"\n1,316.1\n2,\n\n3,317.5\r\n";
        let values = column("s.csv", text, "co2").unwrap();
        assert_eq!(values, [Some(316.1), None, Some(317.5)]);
        assert_eq!(column("s.csv", text, "YEAR").unwrap()[2], Some(3.0));
    }

    #[test]
    fn text_in_the_number_column_is_named_by_line_and_column() {
        let e = error("date,co2\n1,316.1\n19580405,31x7.3\n", "co2");
        assert_eq!(
            e.to_string(),
            "s.csv line 3, column 10: column \"co2\": expected a finite number, found \"31x7.3\""
        );
        assert_eq!(error("date,co2\n1,NaN\n", "co2").column, 3);
    }

    #[test]
    fn a_ragged_row_an_empty_file_a_missing_column_and_no_row_are_errors() {
        let e = error("date,co2\n1,2\n1,2,3\n", "co2");
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        assert!(
            e.message
                .contains("2 fields expected as in the header, found 3"),
            "{e}"
        );
        assert_eq!(error("", "co2").to_string(), "s.csv: the file is empty");
        assert_eq!(
            error("\n \n", "co2").to_string(),
            "s.csv: the file is empty"
        );
        assert_eq!(
            error("date,value\n1,2\n", "co2").to_string(),
            "s.csv line 1: no column \"co2\" in the header [\"date\", \"value\"]"
        );
        assert_eq!(
            error("date,co2\n", "co2").to_string(),
            "s.csv: no row after the header"
        );
    }

    #[test]
    fn gaps_are_interpolated_inside_and_dropped_at_the_ends() {
        let filled = fill_gaps(&[None, Some(1.0), None, None, Some(4.0), None]).unwrap();
        assert_eq!(filled, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(fill_gaps(&[Some(5.0)]).unwrap(), [5.0]);
        assert!(fill_gaps(&[None, None]).is_err());
    }

    /// The shipped series: their lengths, and the CO2 series' 59 gaps filled.
    #[test]
    fn the_shipped_series_read_whole() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let co2 = column("co2", &read("co2_weekly_mauna_loa.csv"), "co2").unwrap();
        assert_eq!(co2.len(), 2284);
        assert_eq!(co2.iter().filter(|v| v.is_none()).count(), 59);
        let filled = fill_gaps(&co2).unwrap();
        assert_eq!(filled.len(), 2284);
        assert!(filled.iter().all(|v| (310.0..380.0).contains(v)));
        let sun = column("sun", &read("sunspots_yearly.csv"), "SUNACTIVITY").unwrap();
        assert_eq!(sun.len(), 309);
        assert!(sun.iter().all(Option::is_some));
    }
}
