//! `<WSGIInterpreterOptions>` (mod_wsgi 6): settings scoped to the
//! interpreters whose process group and application group its selectors
//! match, and how the matching blocks layer over the process-wide ones.
//! Both front ends read a block through [`InterpreterOptions::open`] and
//! [`InterpreterOptions::add`], and the interpreter layers them with
//! [`InterpreterLayers::resolve`].

use std::path::PathBuf;

use crate::directives::{self, GlobalSetting, Setting, GLOBAL_GROUP};
use crate::error::Location;

pub use crate::model::InterpreterOptions;

impl InterpreterOptions {
    /// A block from its opening line's selector words
    /// (`process-group=NAME`, `application-group=NAME`; a trailing `>` of
    /// Apache's raw arguments is ignored), with the problems of the words
    /// that are not valid selectors (the block keeps the valid ones).
    pub fn open(words: &[String], location: Location) -> (InterpreterOptions, Vec<String>) {
        let mut block =
            InterpreterOptions { process_group: None, application_group: None, settings: Vec::new(), location };
        let mut problems = Vec::new();
        for word in words {
            let word = word.strip_suffix('>').unwrap_or(word);
            if word.is_empty() {
                continue;
            }
            let Some((key, value)) = word.split_once('=') else {
                problems.push(format!("<WSGIInterpreterOptions>: argument '{word}' is not of the form key=value"));
                continue;
            };
            let key = key.to_ascii_lowercase();
            let slot = match key.as_str() {
                "process-group" => &mut block.process_group,
                "application-group" => &mut block.application_group,
                _ => {
                    problems.push(format!(
                        "<WSGIInterpreterOptions>: unknown selector '{key}', expected process-group or application-group"
                    ));
                    continue;
                }
            };
            if slot.is_some() {
                problems.push(format!("<WSGIInterpreterOptions>: {key} given more than once"));
            } else if value.contains("%{") && value != GLOBAL_GROUP {
                problems.push(format!(
                    "<WSGIInterpreterOptions>: {key}={value} is refused: only literal names and %{{GLOBAL}} are \
                     supported as selectors"
                ));
            } else {
                *slot = Some(value.to_string());
            }
        }
        (block, problems)
    }

    /// Adds one directive line of the block. Only the interpreter-scoped
    /// directives are allowed; `WSGISwitchInterval` under an
    /// `application-group=` selector is refused, because the embedded
    /// Python's GIL (and so its switch interval) is shared by all the
    /// process's interpreters.
    pub fn add(&mut self, name: &str, args: &[String], python: crate::support::PythonFeatures) -> Result<(), String> {
        let Some(spec) = directives::find(name).filter(|spec| spec.interpreter_scoped) else {
            return Err(format!(
                "{name} is not allowed inside <WSGIInterpreterOptions>; only WSGIPythonPath, WSGISwitchInterval, \
                 WSGIPerInterpreterGIL, WSGIFreeThreading and WSGIRestrictStdin/Stdout/Signal are"
            ));
        };
        let parsed = (spec.parse)(args).map_err(|e| e.to_string())?;
        python.check(&parsed).map_err(|e| e.to_string())?;
        let setting = match parsed {
            Setting::Global(setting) => setting,
            _ => return Err(format!("{name}: not an interpreter setting")),
        };
        if matches!(setting, GlobalSetting::SwitchInterval(_)) && self.application_group.is_some() {
            return Err(format!(
                "{name} inside <WSGIInterpreterOptions application-group=...> is refused: it needs \
                 WSGIPerInterpreterGIL On (Python 3.12 or later), as the embedded Python's switch interval is \
                 shared by every interpreter"
            ));
        }
        self.settings.push(setting);
        Ok(())
    }

    /// Whether the block applies to an interpreter of `process_group`
    /// (`""`: embedded) and `application_group` (`""`: the main one).
    pub fn selects(&self, process_group: &str, application_group: &str) -> bool {
        let matches = |selector: &Option<String>, name: &str| match selector.as_deref() {
            None => true,
            Some(GLOBAL_GROUP) => name.is_empty(),
            Some(value) => value == name,
        };
        matches(&self.process_group, process_group) && matches(&self.application_group, application_group)
    }

    /// How many selectors the block sets: more wins.
    fn specificity(&self) -> usize {
        usize::from(self.process_group.is_some()) + usize::from(self.application_group.is_some())
    }
}

/// The interpreter settings the matching blocks give one interpreter, over
/// the process-wide ones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InterpreterLayers {
    /// `WSGIPythonPath` of each matching block, least specific first: each
    /// is added after the base layer, the last ending up at the front of
    /// `sys.path`.
    pub python_path: Vec<Vec<PathBuf>>,
    /// `WSGISwitchInterval`, from the most specific block that sets it.
    pub switch_interval: Option<f64>,
    /// `WSGIRestrictStdin`, likewise.
    pub restrict_stdin: Option<bool>,
    /// `WSGIRestrictStdout`, likewise.
    pub restrict_stdout: Option<bool>,
    /// `WSGIRestrictSignal`, likewise.
    pub restrict_signal: Option<bool>,
    /// `WSGIPerInterpreterGIL`, likewise.
    pub per_interpreter_gil: Option<bool>,
}

impl InterpreterLayers {
    /// Layers `blocks` for an interpreter of `process_group` and
    /// `application_group`: matching blocks by specificity, then in
    /// configuration order; a later (more specific) scalar wins, paths
    /// accumulate.
    pub fn resolve(blocks: &[InterpreterOptions], process_group: &str, application_group: &str) -> InterpreterLayers {
        let mut matching: Vec<(usize, usize, &InterpreterOptions)> = blocks
            .iter()
            .enumerate()
            .filter(|(_, block)| block.selects(process_group, application_group))
            .map(|(order, block)| (block.specificity(), order, block))
            .collect();
        matching.sort_by_key(|(specificity, order, _)| (*specificity, *order));
        let mut layers = InterpreterLayers::default();
        for (_, _, block) in matching {
            for setting in &block.settings {
                match setting {
                    GlobalSetting::PythonPath(paths) => layers.python_path.push(paths.clone()),
                    GlobalSetting::SwitchInterval(seconds) => layers.switch_interval = Some(*seconds),
                    GlobalSetting::RestrictStdin(on) => layers.restrict_stdin = Some(*on),
                    GlobalSetting::RestrictStdout(on) => layers.restrict_stdout = Some(*on),
                    GlobalSetting::RestrictSignal(on) => layers.restrict_signal = Some(*on),
                    GlobalSetting::PerInterpreterGil(on) => layers.per_interpreter_gil = Some(*on),
                    // WSGIFreeThreading only takes Off (no free-threaded
                    // build is supported), which changes nothing.
                    _ => {}
                }
            }
        }
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(selectors: &[&str], lines: &[(&str, &str)]) -> InterpreterOptions {
        let words: Vec<String> = selectors.iter().map(|s| s.to_string()).collect();
        let (mut block, problems) = InterpreterOptions::open(&words, Location::new("test.conf", 1));
        assert!(problems.is_empty(), "{problems:?}");
        for (name, args) in lines {
            let args: Vec<String> = args.split_whitespace().map(String::from).collect();
            block.add(name, &args, Default::default()).unwrap();
        }
        block
    }

    #[test]
    fn the_most_specific_block_wins_and_paths_accumulate() {
        let blocks = [
            block(&["application-group=app1>"], &[("WSGIRestrictStdout", "Off"), ("WSGIPythonPath", "/app1")]),
            block(&[], &[("WSGIRestrictStdout", "On"), ("WSGIPythonPath", "/all")]),
            block(&["process-group=d", "application-group=app1"], &[("WSGIRestrictStdout", "On")]),
        ];
        let app1 = InterpreterLayers::resolve(&blocks, "", "app1");
        assert_eq!(app1.restrict_stdout, Some(false));
        assert_eq!(app1.python_path, [vec![PathBuf::from("/all")], vec![PathBuf::from("/app1")]]);
        assert_eq!(InterpreterLayers::resolve(&blocks, "d", "app1").restrict_stdout, Some(true));
        let other = InterpreterLayers::resolve(&blocks, "", "other");
        assert_eq!((other.restrict_stdout, other.python_path.len()), (Some(true), 1));
        assert!(block(&["application-group=%{GLOBAL}"], &[]).selects("d", ""));
        assert!(!block(&["process-group=%{GLOBAL}"], &[]).selects("d", ""));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        let mut scoped = block(&["application-group=app1"], &[]);
        let err = scoped.add("WSGISwitchInterval", &["0.01".into()], Default::default()).unwrap_err();
        assert!(err.contains("is refused: it needs WSGIPerInterpreterGIL On"), "{err}");
        assert!(scoped
            .add("WSGIPythonHome", &["/x".into()], Default::default())
            .unwrap_err()
            .contains("not allowed inside"));
        // The GIL modes refuse On here as anywhere (they need a newer Python).
        assert!(scoped
            .add("WSGIPerInterpreterGIL", &["On".into()], Default::default())
            .unwrap_err()
            .contains("needs Python 3.12"));
        assert!(scoped.add("WSGIFreeThreading", &["On".into()], Default::default()).is_err());
        let (_, problems) =
            InterpreterOptions::open(&["application-group=%{ENV:APP}".into()], Location::new("test.conf", 1));
        assert!(problems[0].contains("only literal names"), "{problems:?}");
        assert!(block(&["process-group=d"], &[("WSGISwitchInterval", "0.01")]).settings.len() == 1);
    }
}
