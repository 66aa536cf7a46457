//! The attribute arguments: `#[memoize(timeout = 60, key_prefix = "sq", ...)]`.
//!
//! Parsing never stops at the first mistake: every entry is read, errors are collected and
//! reported together, and the valid options are kept so the caller can still tell what it
//! can.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::discouraged::Speculative as _;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned as _;
use syn::{Expr, Ident, LitInt, LitStr, Path, Token, bracketed};

mod kw {
    syn::custom_keyword!(timeout);
    syn::custom_keyword!(key_prefix);
    syn::custom_keyword!(cache);
    syn::custom_keyword!(unless);
    syn::custom_keyword!(forced_update);
    syn::custom_keyword!(cache_none);
    syn::custom_keyword!(ignore);
    syn::custom_keyword!(codec);
    syn::custom_keyword!(associated);
    syn::custom_keyword!(lease);
    syn::custom_keyword!(early_refresh);
    syn::custom_keyword!(serve_stale);
    syn::custom_keyword!(jitter);
    syn::custom_keyword!(local);
}

/// Every option, as listed in the "unknown option" error.
pub(crate) const OPTIONS: &str = "`timeout`, `key_prefix`, `cache`, `unless`, `forced_update`, \
                                  `cache_none`, `ignore`, `codec`, `crate`, `associated`, \
                                  `lease`, `early_refresh`, `serve_stale`, `jitter`, `local`";

/// Which attribute is being expanded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `#[cached]`: one entry per function.
    Cached,
    /// `#[memoize]`: one entry per argument list.
    Memoize,
}

impl Kind {
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Cached => "#[cached]",
            Kind::Memoize => "#[memoize]",
        }
    }
}

/// A length of time: how long an entry lives, a lease, a grace period.
#[derive(Debug, Clone)]
pub(crate) enum Timeout {
    /// `timeout = 60`: whole seconds.
    Seconds(LitInt),
    /// `timeout = Duration::from_millis(500)`: any expression giving a `Duration`.
    Duration(Expr),
}

/// The parsed options of one attribute. `None` / empty means "not given".
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) timeout: Option<Timeout>,
    pub(crate) key_prefix: Option<LitStr>,
    pub(crate) cache: Option<Path>,
    pub(crate) unless: Option<Expr>,
    pub(crate) forced_update: Option<Expr>,
    pub(crate) cache_none: Option<Span>,
    /// `ignore = [a, b, self]`, with the span of the `ignore` keyword.
    pub(crate) ignore: Option<(Span, Vec<Ident>)>,
    pub(crate) codec: Option<Path>,
    /// `crate = "path"`, parsed.
    pub(crate) krate: Option<Path>,
    /// Forces associated-item companions for an associated fn that mentions neither `self`
    /// nor `Self`.
    pub(crate) associated: Option<Span>,
    /// `lease = 5`: take a cross-process lease on a miss.
    pub(crate) lease: Option<Timeout>,
    /// `early_refresh = 1.0`: the beta of probabilistic early refresh.
    pub(crate) early_refresh: Option<Expr>,
    /// `serve_stale = 30`: the grace period during which a stale value is served.
    pub(crate) serve_stale: Option<Timeout>,
    /// `jitter = 0.1`: the largest fraction of the timeout removed at random.
    pub(crate) jitter: Option<Expr>,
    /// `local = 30`: how long a result may be served from the near cache (0: never).
    pub(crate) local: Option<Timeout>,
    /// Every problem found, combined; returned by [`Args::into_result`].
    errors: Option<syn::Error>,
}

impl Args {
    /// Every error found while reading the options, taken out; the options read correctly
    /// stay, so later checks can still use them.
    pub(crate) fn take_errors(&mut self) -> Option<syn::Error> {
        self.errors.take()
    }

    fn error(&mut self, error: syn::Error) {
        match &mut self.errors {
            Some(errors) => errors.combine(error),
            None => self.errors = Some(error),
        }
    }

    /// Stores `value` in the slot chosen by `slot`, or records a duplicate.
    fn once<T>(&mut self, name: &Ident, value: T, slot: fn(&mut Self) -> &mut Option<T>) {
        if slot(self).is_some() {
            let error = syn::Error::new(name.span(), format!("duplicate option `{name}`"));
            self.error(error);
        } else {
            *slot(self) = Some(value);
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            let name = Ident::parse_any(input)?;
            if let Err(error) = args.entry(&name, input) {
                args.error(error);
                skip_to_comma(input);
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }
}

impl Args {
    /// Reads the value of the option `name` (its `=` not yet consumed).
    fn entry(&mut self, name: &Ident, input: ParseStream<'_>) -> syn::Result<()> {
        match name.to_string().as_str() {
            "timeout" => {
                let value = value(name, input, "an integer of seconds or a `Duration`")?;
                self.once(name, timeout(name, value)?, |a| &mut a.timeout);
            }
            "lease" => {
                let value = value(name, input, "an integer of seconds or a `Duration`")?;
                self.once(name, timeout(name, value)?, |a| &mut a.lease);
            }
            "serve_stale" => {
                let value = value(name, input, "an integer of seconds or a `Duration`")?;
                self.once(name, timeout(name, value)?, |a| &mut a.serve_stale);
            }
            "local" => {
                let value = value(name, input, "an integer of seconds or a `Duration`")?;
                self.once(name, timeout(name, value)?, |a| &mut a.local);
            }
            "early_refresh" => {
                let expr = value(name, input, "an `f64` beta, e.g. `1.0`")?;
                self.once(name, expr, |a| &mut a.early_refresh);
            }
            "jitter" => {
                let expr = value(name, input, "an `f64` fraction, e.g. `0.1`")?;
                self.once(name, expr, |a| &mut a.jitter);
            }
            "key_prefix" => {
                let prefix = string(name, input, "key_prefix = \"users\"")?;
                self.once(name, prefix, |a| &mut a.key_prefix);
            }
            "cache" => {
                let path = path(name, input, "cache = MY_CACHE")?;
                self.once(name, path, |a| &mut a.cache);
            }
            "unless" => {
                let expr = value(name, input, "a `bool` expression")?;
                self.once(name, expr, |a| &mut a.unless);
            }
            "forced_update" => {
                let expr = value(name, input, "a `bool` expression")?;
                self.once(name, expr, |a| &mut a.forced_update);
            }
            "cache_none" => {
                flag(name, input)?;
                self.once(name, name.span(), |a| &mut a.cache_none);
            }
            "associated" => {
                flag(name, input)?;
                self.once(name, name.span(), |a| &mut a.associated);
            }
            "ignore" => {
                let list = ignore_list(name, input)?;
                self.once(name, (name.span(), list), |a| &mut a.ignore);
            }
            "codec" => {
                let path = path(name, input, "codec = cache_core::codec::Json")?;
                self.once(name, path, |a| &mut a.codec);
            }
            "crate" => {
                let lit = string(name, input, "crate = \"my_cache\"")?;
                let path = lit.parse_with(Path::parse_mod_style).map_err(|_| {
                    syn::Error::new_spanned(
                        &lit,
                        "expected a crate path, e.g. `crate = \"my_cache\"`",
                    )
                })?;
                self.once(name, path, |a| &mut a.krate);
            }
            _ => {
                self.error(syn::Error::new(
                    name.span(),
                    format!("unknown option `{name}`; the options are {OPTIONS}"),
                ));
                // Step over a value if there is one.
                if input.parse::<Option<Token![=]>>()?.is_some() {
                    let fork = input.fork();
                    if fork.parse::<Expr>().is_ok() {
                        input.advance_to(&fork);
                    } else {
                        skip_to_comma(input);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Consumes the rest of a broken entry, up to (not including) the next top-level comma.
fn skip_to_comma(input: ParseStream<'_>) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
            rest = next;
        }
        Ok(((), rest))
    });
}

fn eq(name: &Ident, input: ParseStream<'_>, expected: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        Ok(())
    } else {
        Err(syn::Error::new(
            name.span(),
            format!("`{name}` needs a value: `{name} = <{expected}>`"),
        ))
    }
}

fn value(name: &Ident, input: ParseStream<'_>, expected: &str) -> syn::Result<Expr> {
    eq(name, input, expected)?;
    input.parse::<Expr>().map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("expected {expected} after `{name} =`"),
        )
    })
}

fn timeout(name: &Ident, value: Expr) -> syn::Result<Timeout> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(int),
            ..
        }) => {
            int.base10_parse::<u64>().map_err(|_| {
                syn::Error::new_spanned(
                    &int,
                    format!("`{name}` in seconds must be a `u64` integer"),
                )
            })?;
            if !int.suffix().is_empty() {
                return Err(syn::Error::new_spanned(
                    &int,
                    format!("write the number of seconds without a suffix, e.g. `{name} = 60`"),
                ));
            }
            Ok(Timeout::Seconds(int))
        }
        Expr::Lit(syn::ExprLit { lit, .. }) => Err(syn::Error::new_spanned(
            lit,
            format!(
                "`{name}` takes an integer of seconds (`{name} = 60`) or an expression giving a \
                 `Duration` (`{name} = Duration::from_millis(500)`)"
            ),
        )),
        other => Ok(Timeout::Duration(other)),
    }
}

fn string(name: &Ident, input: ParseStream<'_>, example: &str) -> syn::Result<LitStr> {
    let expr = value(name, input, "a string literal")?;
    match expr {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => Ok(lit),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a string literal, e.g. `{example}`"),
        )),
    }
}

fn path(name: &Ident, input: ParseStream<'_>, example: &str) -> syn::Result<Path> {
    let expr = value(name, input, "a path")?;
    match expr {
        Expr::Path(syn::ExprPath {
            path, qself: None, ..
        }) => Ok(path),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a path, e.g. `{example}`"),
        )),
    }
}

fn flag(name: &Ident, input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            input.span(),
            format!("`{name}` is a flag and takes no value; write just `{name}`"),
        ));
    }
    Ok(())
}

fn ignore_list(name: &Ident, input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    if input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            input.span(),
            "write the ignored parameters in brackets: `ignore = [db, self]`",
        ));
    }
    eq(name, input, "a list of parameters")?;
    if !input.peek(syn::token::Bracket) {
        return Err(syn::Error::new(
            input.span(),
            "`ignore` takes a list of parameter names in brackets, e.g. `ignore = [db, self]`",
        ));
    }
    let content;
    bracketed!(content in input);
    let names = content.parse_terminated(Ident::parse_any, Token![,])?;
    if names.is_empty() {
        return Err(syn::Error::new(names.span(), "`ignore` lists no parameter"));
    }
    Ok(names.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<Args> {
        let mut args = syn::parse2::<Args>(tokens)?;
        args.take_errors().map_or(Ok(args), Err)
    }

    fn messages(tokens: proc_macro2::TokenStream) -> Vec<String> {
        let error = parse(tokens).expect_err("an error");
        error.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn every_option_parses() {
        let args = parse(quote! {
            timeout = 60, key_prefix = "sq", cache = crate::MY_CACHE, unless = n == 0,
            forced_update = refresh, cache_none, ignore = [db, self],
            codec = cache_core::codec::Json, crate = "my_cache", associated,
        })
        .unwrap();
        assert!(matches!(args.timeout, Some(Timeout::Seconds(_))));
        assert_eq!(args.key_prefix.unwrap().value(), "sq");
        assert!(args.cache.is_some() && args.unless.is_some() && args.forced_update.is_some());
        assert!(args.cache_none.is_some() && args.associated.is_some());
        let ignored: Vec<String> = args
            .ignore
            .unwrap()
            .1
            .iter()
            .map(|i| i.to_string())
            .collect();
        assert_eq!(ignored, ["db", "self"]);
        assert_eq!(args.krate.unwrap().segments[0].ident, "my_cache");
    }

    #[test]
    fn a_duration_expression_is_a_timeout() {
        let args = parse(quote!(timeout = ::std::time::Duration::from_millis(5))).unwrap();
        assert!(matches!(args.timeout, Some(Timeout::Duration(_))));
    }

    #[test]
    fn local_takes_seconds_or_a_duration() {
        let args = parse(quote!(local = 30)).unwrap();
        assert!(matches!(args.local, Some(Timeout::Seconds(_))));
        let args = parse(quote!(local = Duration::from_millis(500))).unwrap();
        assert!(matches!(args.local, Some(Timeout::Duration(_))));
        let messages = messages(quote!(local = "30s", local = 1));
        assert_eq!(messages.len(), 1, "{messages:#?}");
        assert!(messages[0].contains("`local` takes an integer of seconds"));
    }

    #[test]
    fn no_arguments_is_fine() {
        assert!(parse(quote!()).unwrap().timeout.is_none());
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let messages = messages(quote! {
            timout = 5, timeout = "soon", key_prefix = users, timeout = 1, timeout = 2,
            cache_none = true, ignore = db, ignore(db),
        });
        assert_eq!(messages.len(), 7, "{messages:#?}");
        assert!(messages[0].starts_with("unknown option `timout`; the options are `timeout`"));
        assert!(messages[1].contains("integer of seconds"));
        assert!(messages[2].contains("string literal"));
        assert_eq!(messages[3], "duplicate option `timeout`");
        assert!(messages[4].contains("is a flag"));
        assert!(messages[5].contains("in brackets"));
        assert!(messages[6].contains("`ignore = [db, self]`"));
    }

    #[test]
    fn a_missing_value_is_explained() {
        let messages = messages(quote!(timeout, unless =));
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(messages[0].contains("`timeout` needs a value"));
        assert!(messages[1].contains("expected a `bool` expression"));
    }
}
