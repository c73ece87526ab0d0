//! Apache's lexical rules: logical lines and argument words.
//!
//! Apache reads a configuration file line by line. A line whose last
//! non-blank character is a backslash continues on the next line; leading and
//! trailing blanks are dropped; a line starting with `#` is a comment. Each
//! remaining line is a directive name followed by argument words, split the
//! way `ap_getword_conf()` splits them. The Apache module registers every
//! mod_wsgi directive as `RAW_ARGS` and splits with [`split_args`], so a
//! directive is tokenised the same way whether Apache or our file reader
//! hands it over.

use std::fmt;

/// One logical configuration line: continuation lines joined, blanks trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the physical line the logical line starts on.
    pub line: usize,
    /// The text, with continuations joined and surrounding blanks removed.
    pub text: String,
}

/// Splits configuration text into logical lines, dropping blank lines and
/// comment lines.
///
/// As in Apache, continuation is applied before comment detection, so a
/// comment line ending in a backslash swallows the next line too.
pub fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out = Vec::new();
    let mut pending: Option<LogicalLine> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed_end = raw.trim_end();
        let (body, continues) = match trimmed_end.strip_suffix('\\') {
            Some(body) => (body, true),
            None => (trimmed_end, false),
        };
        let current = pending.get_or_insert_with(|| LogicalLine { line: index + 1, text: String::new() });
        current.text.push_str(body);
        if !continues {
            if let Some(done) = pending.take() {
                push_logical(&mut out, done);
            }
        }
    }
    if let Some(done) = pending.take() {
        push_logical(&mut out, done);
    }
    out
}

fn push_logical(out: &mut Vec<LogicalLine>, mut line: LogicalLine) {
    let trimmed = line.text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return;
    }
    line.text = trimmed.to_string();
    out.push(line);
}

/// An argument string that cannot be split into words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A quoted word has no closing quote.
    #[error("unterminated {quote} quote in arguments")]
    UnterminatedQuote {
        /// The opening quote character.
        quote: Quote,
    },
}

/// The two quote characters Apache accepts around a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `"`
    Double,
    /// `'`
    Single,
}

impl fmt::Display for Quote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Quote::Double => "double",
            Quote::Single => "single",
        })
    }
}

/// Splits a directive's argument string into words as `ap_getword_conf()`
/// does: words are separated by blanks; a word may be wrapped in double or
/// single quotes, inside which a backslash escapes the quote character (and
/// nothing else).
///
/// Unlike Apache, which silently runs an unterminated quote to the end of
/// the line, an unterminated quote is an error: it is always a typo.
pub fn split_args(raw: &str) -> Result<Vec<String>, LexError> {
    let mut words = Vec::new();
    let mut rest = raw.trim_start();
    while !rest.is_empty() {
        let (word, after) = next_word(rest)?;
        words.push(word);
        rest = after.trim_start();
    }
    Ok(words)
}

fn next_word(input: &str) -> Result<(String, &str), LexError> {
    if let Some(quote) = Quote::opening(input) {
        return quoted(input, quote);
    }
    let end = input.find(char::is_whitespace).unwrap_or(input.len());
    // mod_wsgi reads the value of a `name=value` option as a word of its
    // own, so `display-name='my site'` is one option with a quoted value.
    if let Some(eq) = input[..end].find('=') {
        let after = &input[eq + 1..];
        if let Some(quote) = Quote::opening(after) {
            let (value, rest) = quoted(after, quote)?;
            return Ok((format!("{}{value}", &input[..=eq]), rest));
        }
    }
    Ok((input[..end].to_string(), &input[end..]))
}

impl Quote {
    fn opening(input: &str) -> Option<Quote> {
        match input.as_bytes().first() {
            Some(b'"') => Some(Quote::Double),
            Some(b'\'') => Some(Quote::Single),
            _ => None,
        }
    }

    fn char(self) -> char {
        match self {
            Quote::Double => '"',
            Quote::Single => '\'',
        }
    }
}

/// Reads a quoted word at the start of `input`; returns it and the rest.
fn quoted(input: &str, quote: Quote) -> Result<(String, &str), LexError> {
    let quote_char = quote.char();
    let body = &input[1..];
    let mut word = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((index, c)) = chars.next() {
        if c == '\\' {
            if let Some(&(_, next)) = chars.peek() {
                if next == quote_char {
                    word.push(next);
                    chars.next();
                    continue;
                }
            }
            word.push(c);
        } else if c == quote_char {
            return Ok((word, &body[index + 1..]));
        } else {
            word.push(c);
        }
    }
    Err(LexError::UnterminatedQuote { quote })
}

/// Renders `word` so that [`split_args`] reads it back unchanged: bare when
/// it needs no quoting, otherwise double-quoted with inner quotes escaped.
///
/// Apache's syntax cannot express a quoted word that ends in a backslash
/// (the backslash would escape the closing quote); such a word is returned
/// quoted anyway and will not read back identically.
pub fn quote_word(word: &str) -> String {
    let needs_quotes = word.is_empty()
        || word.chars().any(char::is_whitespace)
        || Quote::opening(word).is_some()
        || word.split_once('=').is_some_and(|(_, value)| Quote::opening(value).is_some());
    if !needs_quotes {
        return word.to_string();
    }
    // An option keeps its name bare and quotes its value, as mod_wsgi's
    // documentation writes them: display-name="my site".
    let (prefix, value) = match word.split_once('=') {
        Some((name, value)) if is_option_name(name) => (&word[..=name.len()], value),
        _ => ("", word),
    };
    let mut out = String::with_capacity(word.len() + 2);
    out.push_str(prefix);
    out.push('"');
    for c in value.chars() {
        if c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn is_option_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether [`quote_word`] can render `word` so that it reads back unchanged.
pub fn is_representable(word: &str) -> bool {
    !(word.ends_with('\\') && quote_word(word).ends_with('"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(raw: &str) -> Vec<String> {
        split_args(raw).unwrap()
    }

    #[test]
    fn joins_continuations_and_drops_comments() {
        let text = "# comment\n\nA b \\\n  c\n   # indented comment\nD\t\n";
        let lines = logical_lines(text);
        assert_eq!(
            lines,
            vec![LogicalLine { line: 3, text: "A b   c".into() }, LogicalLine { line: 6, text: "D".into() },]
        );
    }

    #[test]
    fn comment_continuation_swallows_next_line_as_apache_does() {
        let lines = logical_lines("# note \\\nHidden on\nShown\n");
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "Shown");
        assert_eq!(lines[0].line, 3);
    }

    #[test]
    fn trailing_backslash_on_last_line_is_kept_as_a_line() {
        let lines = logical_lines("A b\\");
        assert_eq!(lines[0].text, "A b");
    }

    #[test]
    fn splits_bare_and_quoted_words() {
        assert_eq!(words("  a  b\tc "), ["a", "b", "c"]);
        assert_eq!(words(r#""a b" 'c d' e"#), ["a b", "c d", "e"]);
        assert_eq!(words(r#""say \"hi\"" 'it\'s'"#), [r#"say "hi""#, "it's"]);
        assert_eq!(words(r#""a\nb""#), [r"a\nb"]);
        assert_eq!(words(r#""""#), [""]);
        assert!(words("").is_empty());
    }

    #[test]
    fn quote_ends_word_even_without_space() {
        assert_eq!(words(r#""a"b"#), ["a", "b"]);
    }

    #[test]
    fn option_values_may_be_quoted_as_mod_wsgi_reads_them() {
        assert_eq!(
            words("g display-name='my site' lang=\"en_US.UTF-8\" x=y"),
            ["g", "display-name=my site", "lang=en_US.UTF-8", "x=y"]
        );
        assert_eq!(words("a='%{GROUP}'"), ["a=%{GROUP}"]);
        assert_eq!(words("a=b'c"), ["a=b'c"], "a quote inside a value is literal");
        assert!(split_args("a='open").is_err());
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(split_args(r#"a "b c"#), Err(LexError::UnterminatedQuote { quote: Quote::Double }));
    }

    #[test]
    fn quote_word_round_trips() {
        for w in [
            "plain",
            "",
            "a b",
            "\"x",
            "'y",
            "ends\\",
            "q\"uote",
            "a\\\"b c",
            "display-name=my site",
            "a=\"b",
            "x y=z",
            "=a b",
        ] {
            assert_eq!(words(&quote_word(w)), [w], "word {w:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn split_never_panics(s in ".*") {
            let _ = split_args(&s);
            let _ = logical_lines(&s);
        }

        #[test]
        fn quoted_words_round_trip(ws in proptest::collection::vec("[^\n\r]*", 0..6)) {
            let ws: Vec<String> = ws.into_iter().filter(|w| is_representable(w)).collect();
            let line = ws.iter().map(|w| quote_word(w)).collect::<Vec<_>>().join(" ");
            proptest::prop_assert_eq!(split_args(&line).unwrap(), ws);
        }
    }
}
