//! Where a field path (`services[2].backends[0].ip`) sits in RON text, so that errors found
//! after parsing (duplicates, ranges, subnets) still point at a line and column.
//!
//! A small walker over RON's syntax: structs and tuples `( )`, lists `[ ]`, maps `{ }`,
//! strings, comments, `Some(...)` (transparent, as serde's paths treat it) and enum variants.

use std::collections::HashMap;

/// The 1-based (line, column) of `path`, or of its nearest enclosing part that is present.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let out = walk(text);
    let mut p = path.to_string();
    loop {
        if let Some(pos) = out.get(&p) {
            return Some(*pos);
        }
        if p.is_empty() {
            return None;
        }
        let cut = p.rfind(['.', '[']).unwrap_or(0);
        p.truncate(cut);
    }
}

/// The position of exactly `path`, if the text has it.
pub fn locate_exact(text: &str, path: &str) -> Option<(usize, usize)> {
    walk(text).get(path).copied()
}

fn walk(text: &str) -> HashMap<String, (usize, usize)> {
    let mut w = Walker { s: text.as_bytes(), i: 0, line: 1, col: 1, out: HashMap::new(), depth: 0 };
    w.skip_ws();
    while w.peek() == Some(b'#') {
        w.skip_balanced_attr();
        w.skip_ws();
    }
    w.value(String::new());
    w.out
}

struct Walker<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    col: usize,
    out: HashMap<String, (usize, usize)>,
    depth: usize,
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.i += 1;
            if c == b'\n' {
                self.line += 1;
                self.col = 1;
            } else if c & 0xc0 != 0x80 {
                self.col += 1;
            }
        }
    }

    fn skip_ws(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_whitespace() => self.bump(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'/') => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    self.bump();
                    self.bump();
                    while self.peek().is_some()
                        && !(self.peek() == Some(b'*') && self.s.get(self.i + 1) == Some(&b'/'))
                    {
                        self.bump();
                    }
                    self.bump();
                    self.bump();
                }
                _ => return,
            }
        }
    }

    fn skip_balanced_attr(&mut self) {
        // #![enable(...)]
        while !matches!(self.peek(), None | Some(b'[')) {
            self.bump();
        }
        let mut d = 0;
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                b'[' => d += 1,
                b']' => {
                    d -= 1;
                    if d == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn ident(&mut self) -> String {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == b'_') {
            self.bump();
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    fn record(&mut self, path: &str) {
        self.out.entry(path.to_string()).or_insert((self.line, self.col));
    }

    fn value(&mut self, path: String) {
        self.depth += 1;
        if self.depth > 64 {
            return;
        }
        self.skip_ws();
        self.record(&path);
        match self.peek() {
            Some(b'(') => self.parens(&path),
            Some(b'[') => self.list(&path),
            Some(b'{') => self.skip_group(b'{', b'}'),
            Some(b'"') => self.string(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let id = self.ident();
                self.skip_ws();
                if self.peek() == Some(b'(') {
                    if id == "Some" {
                        // Transparent in serde's paths: the inner value has the same path.
                        self.bump();
                        self.value(path.clone());
                        self.skip_ws();
                        if self.peek() == Some(b')') {
                            self.bump();
                        }
                    } else {
                        // An enum variant: its fields belong to the value's path.
                        self.parens(&path);
                    }
                }
            }
            _ => {
                while !matches!(self.peek(), None | Some(b',') | Some(b')') | Some(b']') | Some(b'}')) {
                    self.bump();
                }
            }
        }
        self.depth -= 1;
    }

    fn string(&mut self) {
        self.bump();
        while let Some(c) = self.peek() {
            self.bump();
            match c {
                b'\\' => self.bump(),
                b'"' => return,
                _ => {}
            }
        }
    }

    fn skip_group(&mut self, open: u8, close: u8) {
        let mut d = 0;
        while let Some(c) = self.peek() {
            if c == b'"' {
                self.string();
                continue;
            }
            self.bump();
            if c == open {
                d += 1;
            } else if c == close {
                d -= 1;
                if d == 0 {
                    return;
                }
            }
        }
    }

    /// Items separated by commas up to `close` (the opening bracket is consumed here); `item`
    /// reads one, given its index.
    fn sequence(&mut self, close: u8, mut item: impl FnMut(&mut Self, usize)) {
        self.bump();
        let mut idx = 0;
        loop {
            self.skip_ws();
            match self.peek() {
                None => return,
                Some(c) if c == close => {
                    self.bump();
                    return;
                }
                _ => {}
            }
            item(self, idx);
            self.skip_ws();
            if self.peek() == Some(b',') {
                self.bump();
                idx += 1;
            } else if self.peek() != Some(close) {
                return;
            }
        }
    }

    fn list(&mut self, path: &str) {
        self.sequence(b']', |w, idx| w.value(format!("{path}[{idx}]")));
    }

    /// A struct `(field: value, ...)` or a tuple `(value, ...)`.
    fn parens(&mut self, path: &str) {
        self.sequence(b')', |w, idx| {
            // A field name, if an identifier is followed by a single ':'.
            let save = (w.i, w.line, w.col);
            if matches!(w.peek(), Some(c) if c.is_ascii_alphabetic() || c == b'_') {
                let pos = (w.line, w.col);
                let id = w.ident();
                w.skip_ws();
                if w.peek() == Some(b':') && w.s.get(w.i + 1) != Some(&b':') {
                    w.bump();
                    let p = if path.is_empty() { id } else { format!("{path}.{id}") };
                    w.out.entry(p.clone()).or_insert(pos);
                    w.value(p);
                    return;
                }
                (w.i, w.line, w.col) = save;
            }
            w.value(if path.is_empty() { format!("{idx}") } else { format!("{path}.{idx}") });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"#![enable(implicit_some)]
// comment with ( and [
(
    ports: [(device: "net_tap0,iface=x", addresses: ["10.0.0.2/24"])],
    services: [
        (vip: "10.0.0.100", mode: l2, backends: [(ip: "10.0.0.11"), (ip: "10.0.0.12", weight: 2)]),
        (vip: "10.0.0.101", mode: dscp(7),
         health_check: Some((check: http(path: "/index.html", status: 200))),
         backends: []),
    ],
)
"#;

    #[test]
    fn finds_fields_and_list_items() {
        assert_eq!(locate(TEXT, "ports"), Some((4, 5)));
        assert_eq!(locate(TEXT, "ports[0].device"), Some((4, 14)));
        assert_eq!(locate(TEXT, "services[0].backends[1].weight"), Some((6, 87)));
        assert_eq!(locate(TEXT, "services[1].mode"), Some((7, 29)));
        assert_eq!(locate(TEXT, "services[1].health_check.check"), Some((8, 30)));
    }

    #[test]
    fn falls_back_to_the_nearest_enclosing_part() {
        assert_eq!(locate(TEXT, "services[1].backends[3].ip"), locate(TEXT, "services[1].backends"));
        assert_eq!(locate(TEXT, "services[0].nope"), locate(TEXT, "services[0]"));
    }
}
