//! The `#[cached]` and `#[memoize]` attributes. Use them through `cache_core`.

use proc_macro::TokenStream;

mod analyze;
mod args;
mod expand;

use args::Kind;

/// `#[cached]`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Cached, args, item)
}

/// `#[memoize]`.
#[proc_macro_attribute]
pub fn memoize(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Memoize, args, item)
}

/// Forwards to the `proc_macro2` expansion; on error, keeps the item as written (so the
/// IDE still knows the function) and adds every error.
fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item = proc_macro2::TokenStream::from(item);
    match expand::attribute(kind, args.into(), item.clone()) {
        Ok(tokens) => tokens.into(),
        Err(error) => {
            let mut tokens = item;
            tokens.extend(error.into_compile_error());
            tokens.into()
        }
    }
}
