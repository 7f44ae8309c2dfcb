//! The UEA/UCR `.ts` format of multivariate time-series classification, as far as Japanese
//! Vowels uses it: header lines, then one case per line.
//!
//! - Lines starting with `#` are comments; blank lines are skipped.
//! - Lines starting with `@` are the header: `@dimensions D` (the number of series per case),
//!   `@classLabel true L1 L2 ...` (the labels, in the order that numbers the classes from 0),
//!   `@data` (the cases follow). Other keys (`@problemName`, `@equalLength`, ...) are read
//!   past. Keys are matched without regard to case, as the format's readers do.
//! - A case is `D` dimensions separated by `:`, each a comma-separated series of numbers, then
//!   `:` and the class label. Every dimension of a case has the same length (the case's number
//!   of steps); lengths may differ from case to case. Missing values (`?`) are refused, as
//!   `@missing false` promises.
//!
//! Every malformed input is an error naming the file, the line and the column (1-based, in
//! characters) where the trouble starts: a ragged case (a dimension of another length, or a
//! missing dimension), text where a number belongs, a label not declared by `@classLabel`, no
//! `@data`, an empty file, a file with no case.

#[path = "../common/file_error.rs"]
mod file_error;
use std::path::Path;

/// A labelled set of variable-length multivariate series.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Series per step of every case (`@dimensions`).
    pub dims: usize,
    /// The class labels as `@classLabel` lists them; class `k` is `classes[k]`.
    pub classes: Vec<String>,
    /// Every case's values, step-major: step `t` of dimension `d` at `t * dims + d`.
    pub series: Vec<Vec<f32>>,
    /// Every case's class, an index into `classes`.
    pub labels: Vec<usize>,
}

impl Dataset {
    /// The number of cases.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The number of steps of case `i`.
    pub fn steps(&self, i: usize) -> usize {
        self.series[i].len() / self.dims
    }
}

/// What is wrong with a `.ts` text, and where (shared with the other data example).
pub type TsError = file_error::FileError;

/// Reads the `.ts` file at `path`.
pub fn read(path: &Path) -> Result<Dataset, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(parse(&path.display().to_string(), &text)?)
}

/// Parses a `.ts` text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dataset, TsError> {
    let err = |line: usize, column: usize, message: String| TsError {
        file: file.to_owned(),
        line,
        column,
        message,
    };
    if text.trim().is_empty() {
        return Err(err(0, 0, "the file is empty".into()));
    }
    let mut header = Header::default();
    let mut set: Option<Dataset> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match &mut set {
            None if line.starts_with('@') => {
                if header.read(line).map_err(|m| err(number, 1, m))? {
                    set = Some(header.dataset().map_err(|m| err(number, 1, m))?);
                }
            }
            None => {
                let message = "a case before the header's @data line".to_owned();
                return Err(err(number, 1, message));
            }
            Some(set) => {
                let (series, label) = case(line, set).map_err(|(c, m)| err(number, c, m))?;
                set.series.push(series);
                set.labels.push(label);
            }
        }
    }
    let set = set.ok_or_else(|| err(0, 0, "no @data line: the header never ends".into()))?;
    if set.labels.is_empty() {
        return Err(err(0, 0, "no case after @data".into()));
    }
    Ok(set)
}

/// The header keys that matter here.
#[derive(Default)]
struct Header {
    dims: Option<usize>,
    classes: Option<Vec<String>>,
}

impl Header {
    /// Reads one `@` line; returns whether it is `@data`.
    fn read(&mut self, line: &str) -> Result<bool, String> {
        let mut words = line.split_whitespace();
        let key = words.next().unwrap_or("").to_ascii_lowercase();
        match key.as_str() {
            "@data" => return Ok(true),
            "@dimensions" => {
                let value = words.next().unwrap_or("");
                match value.parse::<usize>() {
                    Ok(d) if d >= 1 => self.dims = Some(d),
                    _ => {
                        return Err(format!(
                            "@dimensions must be a whole number of at least 1, got {value:?}"
                        ));
                    }
                }
            }
            "@classlabel" => {
                if words.next().map(str::to_ascii_lowercase).as_deref() != Some("true") {
                    return Err(
                        "@classLabel must be `true` followed by the labels: this reader classifies"
                            .into(),
                    );
                }
                let labels: Vec<String> = words.map(str::to_owned).collect();
                if labels.is_empty() {
                    return Err("@classLabel true lists no label".into());
                }
                self.classes = Some(labels);
            }
            _ => {}
        }
        Ok(false)
    }

    fn dataset(&self) -> Result<Dataset, String> {
        let dims = self.dims.ok_or("@data before @dimensions")?;
        let classes = self.classes.clone().ok_or("@data before @classLabel")?;
        Ok(Dataset {
            dims,
            classes,
            series: Vec::new(),
            labels: Vec::new(),
        })
    }
}

/// One case: its values (step-major) and class, or the column and message of what is wrong.
fn case(line: &str, set: &Dataset) -> Result<(Vec<f32>, usize), (usize, String)> {
    let fields = columns(line, ':');
    if fields.len() != set.dims + 1 {
        let column = fields.last().map_or(1, |f| f.0);
        let message = format!(
            "a ragged case: {} dimensions and a label expected ({} fields separated by ':'), \
             found {} fields",
            set.dims,
            set.dims + 1,
            fields.len()
        );
        return Err((column, message));
    }
    let (label_column, label) = fields[set.dims];
    let label = label.trim();
    let class = (set.classes.iter().position(|c| c == label)).ok_or_else(|| {
        let message = format!(
            "label {label:?} is not one of @classLabel's {:?}",
            set.classes
        );
        (label_column, message)
    })?;
    let mut dims: Vec<Vec<f32>> = Vec::with_capacity(set.dims);
    for (d, &(start, field)) in fields[..set.dims].iter().enumerate() {
        let mut values = Vec::new();
        for (offset, text) in columns(field, ',') {
            let value = text.trim().parse::<f32>().ok().filter(|v| v.is_finite());
            let value = value.ok_or_else(|| {
                let message = format!(
                    "dimension {}: expected a finite number, found {text:?}",
                    d + 1
                );
                (start + offset - 1, message)
            })?;
            values.push(value);
        }
        if let Some(first) = dims.first().filter(|first| first.len() != values.len()) {
            let message = format!(
                "a ragged case: dimension {} has {} values, dimension 1 has {}",
                d + 1,
                values.len(),
                first.len()
            );
            return Err((start, message));
        }
        dims.push(values);
    }
    let steps = dims[0].len();
    let series = (0..steps * set.dims)
        .map(|i| dims[i % set.dims][i / set.dims])
        .collect();
    Ok((series, class))
}

/// The pieces of `text` between `separator`s, each with its column (from 1, in characters).
fn columns(text: &str, separator: char) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut column = 1;
    for piece in text.split(separator) {
        out.push((column, piece));
        column += piece.chars().count() + 1;
    }
    out
}

/// The mean and standard deviation of each dimension over every step of a set.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardise {
    /// Per dimension.
    pub mean: Vec<f64>,
    /// Per dimension: the population deviation (divisor `N`), 1 where it is 0.
    pub std: Vec<f64>,
}

impl Standardise {
    /// The statistics of `set` (the training split: the test split must not leak into them).
    pub fn fit(set: &Dataset) -> Standardise {
        let d = set.dims;
        let (mut sum, mut sq, mut n) = (vec![0.0; d], vec![0.0; d], 0.0);
        for series in &set.series {
            for (i, &v) in series.iter().enumerate() {
                sum[i % d] += f64::from(v);
                sq[i % d] += f64::from(v) * f64::from(v);
            }
            n += (series.len() / d) as f64;
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = (sq.iter().zip(&mean))
            .map(|(q, m)| (q / n - m * m).max(0.0).sqrt())
            .map(|s| if s > 0.0 { s } else { 1.0 })
            .collect();
        Standardise { mean, std }
    }

    /// `set` with every value `(x - mean) / std` of its dimension.
    pub fn apply(&self, set: &mut Dataset) {
        let d = set.dims;
        for series in &mut set.series {
            for (i, v) in series.iter_mut().enumerate() {
                *v = ((f64::from(*v) - self.mean[i % d]) / self.std[i % d]) as f32;
            }
        }
    }
}

#[cfg(test)]
#[path = "ts_tests.rs"]
mod tests;
