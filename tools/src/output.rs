//! Row output as an aligned table, JSON lines or CSV.

use serde_json::Value;
use std::io::Write;

use crate::cli::Format;
use crate::Error;

/// Rows buffered to size the table's columns before printing starts.
const TABLE_SIZING_ROWS: usize = 5000;

/// Writes rows of `(column, value)` pairs; every row has the given columns.
pub struct RowWriter<W: Write> {
    out: W,
    format: Format,
    columns: Vec<&'static str>,
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    started: bool,
}

pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl<W: Write> RowWriter<W> {
    pub fn new(out: W, format: Format, columns: &[&'static str]) -> RowWriter<W> {
        RowWriter { out, format, columns: columns.to_vec(), pending: Vec::new(), widths: None, started: false }
    }

    pub fn row(&mut self, values: Vec<Value>) -> Result<(), Error> {
        debug_assert_eq!(values.len(), self.columns.len());
        match self.format {
            Format::Json => {
                let obj: serde_json::Map<String, Value> =
                    self.columns.iter().map(|c| c.to_string()).zip(values).collect();
                writeln!(self.out, "{}", Value::Object(obj)).map_err(Error::io)
            }
            Format::Csv => {
                if !self.started {
                    self.started = true;
                    writeln!(self.out, "{}", self.columns.join(",")).map_err(Error::io)?;
                }
                let line: Vec<String> = values.iter().map(|v| csv_field(&cell(v))).collect();
                writeln!(self.out, "{}", line.join(",")).map_err(Error::io)
            }
            Format::Table => {
                let cells: Vec<String> = values.iter().map(cell).collect();
                if self.widths.is_some() {
                    return self.print_table_row(&cells);
                }
                self.pending.push(cells);
                if self.pending.len() >= TABLE_SIZING_ROWS {
                    self.flush_pending()?;
                }
                Ok(())
            }
        }
    }

    fn print_table_row(&mut self, cells: &[String]) -> Result<(), Error> {
        let widths = self.widths.as_ref().expect("sized");
        let mut line = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(self.out, "{}", line.trim_end()).map_err(Error::io)
    }

    fn flush_pending(&mut self) -> Result<(), Error> {
        if self.widths.is_none() {
            let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
            for row in &self.pending {
                for (w, c) in widths.iter_mut().zip(row) {
                    *w = (*w).max(c.len());
                }
            }
            self.widths = Some(widths);
            let header: Vec<String> = self.columns.iter().map(|c| c.to_string()).collect();
            self.print_table_row(&header)?;
        }
        for row in std::mem::take(&mut self.pending) {
            self.print_table_row(&row)?;
        }
        Ok(())
    }

    /// Prints what is buffered (a table with no rows prints only its header).
    pub fn finish(mut self) -> Result<(), Error> {
        if self.format == Format::Table {
            self.flush_pending()?;
        } else if self.format == Format::Csv && !self.started {
            writeln!(self.out, "{}", self.columns.join(",")).map_err(Error::io)?;
        }
        self.out.flush().map_err(Error::io)
    }
}
