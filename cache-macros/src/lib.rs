//! Placeholder until the attributes land.
use proc_macro::TokenStream;

/// `#[cached]`.
#[proc_macro_attribute]
pub fn cached(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// `#[memoize]`.
#[proc_macro_attribute]
pub fn memoize(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
