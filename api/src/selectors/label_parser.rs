//! The string form of a label selector, read the way Kubernetes' `labels.Parse` reads it: a small lexer that
//! turns `app in (web, api),!canary` into tokens, then a recursive-descent parser that builds requirements and
//! words its errors exactly like Kubernetes (`found 'x', expected: ...`).

use super::SelectorError;
use super::labels::{Operator, Requirement, key_error};

/// Reads the requirements of a selector string (unsorted).
pub(super) fn parse(text: &str) -> Result<Vec<Requirement>, SelectorError> {
    Parser { tokens: lex(text), position: 0 }.parse()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    /// `!`
    Not,
    /// `=`, `==`, `!=`, `>`, `<`, `in`, `notin`
    Op(Operator),
    Open,
    Close,
    Comma,
    End,
    /// A run of symbols that is no operator, e.g. `=!`.
    Error(String),
}

impl Token {
    /// How the token appears in error messages.
    fn literal(&self) -> String {
        match self {
            Token::Identifier(s) | Token::Error(s) => s.clone(),
            Token::Not => "!".into(),
            Token::Op(op) => match op {
                Operator::Equals => "=",
                Operator::DoubleEquals => "==",
                Operator::NotEquals => "!=",
                Operator::GreaterThan => ">",
                Operator::LessThan => "<",
                Operator::In => "in",
                Operator::NotIn => "notin",
                Operator::Exists | Operator::DoesNotExist => "",
            }
            .into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
            Token::End => String::new(),
        }
    }

    /// Where a value is expected, `in` and `notin` are ordinary words (`app in (in, out)`).
    fn as_value(&self) -> Token {
        match self {
            Token::Op(Operator::In) => Token::Identifier("in".into()),
            Token::Op(Operator::NotIn) => Token::Identifier("notin".into()),
            other => other.clone(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn symbol(text: &str) -> Option<Token> {
    Some(match text {
        "!" => Token::Not,
        "!=" => Token::Op(Operator::NotEquals),
        "=" => Token::Op(Operator::Equals),
        "==" => Token::Op(Operator::DoubleEquals),
        ">" => Token::Op(Operator::GreaterThan),
        "<" => Token::Op(Operator::LessThan),
        "(" => Token::Open,
        ")" => Token::Close,
        "," => Token::Comma,
        _ => return None,
    })
}

/// Splits the text into tokens. Symbols are read greedily: `!=` is one token, `((` is two.
fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            i += 1;
        } else if is_special(c) {
            let mut buffer = String::new();
            let mut last: Option<(Token, usize)> = None;
            while i < chars.len() && is_special(chars[i]) {
                buffer.push(chars[i]);
                if let Some(token) = symbol(&buffer) {
                    last = Some((token, buffer.len()));
                } else if last.is_some() {
                    break;
                }
                i += 1;
            }
            match last {
                Some((token, _)) => tokens.push(token),
                None => tokens.push(Token::Error(format!("error expected: keyword found '{buffer}'"))),
            }
        } else {
            let start = i;
            while i < chars.len() && !is_special(chars[i]) && !matches!(chars[i], ' ' | '\t' | '\r' | '\n') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::Op(Operator::In),
                "notin" => Token::Op(Operator::NotIn),
                _ => Token::Identifier(word),
            });
        }
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Token {
        self.tokens.get(self.position).cloned().unwrap_or(Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek();
        self.position += 1;
        token
    }

    fn error(message: String) -> SelectorError {
        SelectorError::InvalidLabelSelector(message)
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.peek().as_value() {
                Token::Identifier(_) | Token::Not => {
                    let requirement = self.requirement().map_err(|err| match err {
                        SelectorError::InvalidLabelSelector(m) => {
                            Self::error(format!("unable to parse requirement: {m}"))
                        }
                        other => other,
                    })?;
                    requirements.push(requirement);
                    match self.next().as_value() {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let after = self.peek().as_value();
                            if !matches!(after, Token::Identifier(_) | Token::Not) {
                                return Err(Self::error(format!(
                                    "found '{}', expected: identifier after ','",
                                    after.literal()
                                )));
                            }
                        }
                        other => {
                            return Err(Self::error(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            )));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                other => {
                    return Err(Self::error(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut token = self.next().as_value();
        let negated = token == Token::Not;
        if negated {
            token = self.next().as_value();
        }
        let Token::Identifier(key) = token else {
            return Err(Self::error(format!("found '{}', expected: identifier", token.literal())));
        };
        if let Some(err) = key_error(&key) {
            return Err(Self::error(err));
        }
        let unary = matches!(self.peek().as_value(), Token::End | Token::Comma);
        if negated {
            return Requirement::new(&key, Operator::DoesNotExist, Vec::new());
        }
        if unary {
            return Requirement::new(&key, Operator::Exists, Vec::new());
        }
        let operator = match self.next() {
            Token::Op(op) => op,
            other => {
                return Err(Self::error(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                )));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_list()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, operator, values)
    }

    /// `(a, b)`: returned sorted and without duplicates, as Kubernetes keeps them in a set.
    fn value_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.next();
        if open != Token::Open {
            return Err(Self::error(format!("found '{}' expected: '('", open.literal())));
        }
        let mut values = Vec::new();
        match self.peek().as_value() {
            Token::Close => {
                self.next();
                values.push(String::new());
            }
            Token::Identifier(_) | Token::Comma => {
                loop {
                    match self.next().as_value() {
                        Token::Identifier(value) => {
                            values.push(value);
                            match self.peek().as_value() {
                                Token::Comma => continue,
                                Token::Close => break,
                                other => {
                                    return Err(Self::error(format!(
                                        "found '{}', expected: ',' or ')'",
                                        other.literal()
                                    )));
                                }
                            }
                        }
                        Token::Comma => {
                            // `(,a)`, `(a,)` and `(a,,b)` each hold the empty value.
                            if values.is_empty() {
                                values.push(String::new());
                            }
                            match self.peek().as_value() {
                                Token::Close => {
                                    values.push(String::new());
                                    break;
                                }
                                Token::Comma => {
                                    self.next();
                                    values.push(String::new());
                                }
                                _ => {}
                            }
                        }
                        other => {
                            return Err(Self::error(format!(
                                "found '{}', expected: ',', or identifier",
                                other.literal()
                            )));
                        }
                    }
                }
                let close = self.next();
                if close != Token::Close {
                    return Err(Self::error(format!("found '{}', expected: ')'", close.literal())));
                }
            }
            other => {
                return Err(Self::error(format!("found '{}', expected: ',', ')' or identifier", other.literal())));
            }
        }
        values.sort();
        values.dedup();
        Ok(values)
    }

    /// The single value after `=`, `!=`, `>`, `<`; `a=` means the empty value.
    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.peek().as_value() {
            Token::End | Token::Comma => Ok(vec![String::new()]),
            Token::Identifier(value) => {
                self.next();
                Ok(vec![value])
            }
            other => Err(Self::error(format!("found '{}', expected: identifier", other.literal()))),
        }
    }
}
