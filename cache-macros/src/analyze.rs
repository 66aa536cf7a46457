//! The annotated function turned into a plain description: async or not, receiver,
//! parameters, return type and generics, with every unsupported shape reported.

use proc_macro2::{Ident, TokenStream, TokenTree};
use quote::ToTokens as _;
use syn::spanned::Spanned as _;
use syn::{FnArg, GenericParam, ItemFn, Pat, ReturnType, Type};

/// One named parameter (the receiver excluded).
#[derive(Debug, Clone)]
pub(crate) struct Param {
    pub(crate) ident: Ident,
    pub(crate) ty: Type,
}

/// The receiver of a method: `self` in any of its non-`mut`-borrowing forms.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    /// The span of its `self` token.
    pub(crate) self_span: proc_macro2::Span,
}

/// What the expansion needs to know about the function.
#[derive(Debug)]
pub(crate) struct Function {
    /// The function as written; its signature and attributes are re-emitted unchanged.
    pub(crate) item: ItemFn,
    pub(crate) is_async: bool,
    pub(crate) receiver: Option<Receiver>,
    pub(crate) params: Vec<Param>,
    pub(crate) ret: Type,
    /// Type and const parameters, in order, for turbofishes.
    pub(crate) generic_args: Vec<Ident>,
    /// Type parameters, whose names enter the key.
    pub(crate) type_params: Vec<Ident>,
    /// The function has a receiver or its signature mentions `Self`, so it is an associated
    /// item.
    pub(crate) mentions_self: bool,
}

impl Function {
    /// The function's name.
    pub(crate) fn name(&self) -> &Ident {
        &self.item.sig.ident
    }
}

/// Describes `item`, or reports every unsupported part of its shape.
pub(crate) fn analyze(item: ItemFn) -> syn::Result<Function> {
    let mut errors = Errors::default();
    check_qualifiers(&item, &mut errors);
    let ret = return_type(&item, &mut errors);
    let mut receiver = None;
    let mut params = Vec::new();
    for input in &item.sig.inputs {
        match input {
            FnArg::Receiver(recv) => match check_receiver(recv) {
                Ok(r) => receiver = Some(r),
                Err(e) => errors.push(e),
            },
            FnArg::Typed(typed) => match param(typed) {
                Ok(p) => params.push(p),
                Err(e) => errors.push(e),
            },
        }
    }
    let mut generic_args = Vec::new();
    let mut type_params = Vec::new();
    for param in &item.sig.generics.params {
        match param {
            GenericParam::Type(t) => {
                generic_args.push(t.ident.clone());
                type_params.push(t.ident.clone());
            }
            GenericParam::Const(c) => generic_args.push(c.ident.clone()),
            GenericParam::Lifetime(_) => {}
        }
    }
    errors.finish()?;
    Ok(Function {
        is_async: item.sig.asyncness.is_some(),
        mentions_self: receiver.is_some() || mentions_self(item.sig.to_token_stream()),
        receiver,
        params,
        ret: ret.expect("no error, so a return type"),
        generic_args,
        type_params,
        item,
    })
}

/// Collected errors, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

fn check_qualifiers(item: &ItemFn, errors: &mut Errors) {
    let sig = &item.sig;
    if let Some(constness) = &sig.constness {
        errors.push(syn::Error::new_spanned(
            constness,
            "a cached function cannot be `const`: reading a cache is not a constant operation",
        ));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a cached function cannot be `unsafe`; cache a safe wrapper instead",
        ));
    }
    if let Some(abi) = &sig.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a cached function cannot have an `extern` ABI; cache a Rust function that calls it",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a cached function cannot be variadic",
        ));
    }
}

fn return_type(item: &ItemFn, errors: &mut Errors) -> Option<Type> {
    let ty = match &item.sig.output {
        ReturnType::Default => {
            errors.push(syn::Error::new_spanned(
                &item.sig.ident,
                "this function returns nothing, so there is nothing to cache; cache a \
                 function that returns its result",
            ));
            return None;
        }
        ReturnType::Type(_, ty) => ty,
    };
    match unparen(ty) {
        Type::Tuple(tuple) if tuple.elems.is_empty() => errors.push(syn::Error::new_spanned(
            ty,
            "this function returns `()`, so there is nothing to cache; cache a function that \
             returns its result",
        )),
        Type::ImplTrait(_) => errors.push(syn::Error::new_spanned(
            ty,
            "a cached function cannot return `impl Trait`: the cache must know the concrete \
             type to store and read back; name the type",
        )),
        _ => return Some((**ty).clone()),
    }
    None
}

fn unparen(ty: &Type) -> &Type {
    match ty {
        Type::Paren(inner) => unparen(&inner.elem),
        Type::Group(inner) => unparen(&inner.elem),
        other => other,
    }
}

fn check_receiver(recv: &syn::Receiver) -> syn::Result<Receiver> {
    let mutable = match unparen(&recv.ty) {
        Type::Reference(reference) => reference.mutability.is_some(),
        _ => false,
    };
    if mutable {
        return Err(syn::Error::new_spanned(
            recv,
            "a cached method cannot take `&mut self`: a cached call may skip the body, so it \
             must not be meant to change `self`; take `&self`",
        ));
    }
    Ok(Receiver {
        self_span: recv.self_token.span,
    })
}

fn param(typed: &syn::PatType) -> syn::Result<Param> {
    let ident = match &*typed.pat {
        Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "give this parameter a plain name (`name: Type`): the cache refers to \
                 parameters by name; destructure it in the body",
            ));
        }
    };
    if contains_impl_trait(typed.ty.to_token_stream()) {
        return Err(syn::Error::new_spanned(
            &typed.ty,
            "a cached function cannot take `impl Trait`: name a generic parameter instead \
             (`fn f<T: Trait>(x: T)`), so its type can enter the key",
        ));
    }
    Ok(Param {
        ident,
        ty: (*typed.ty).clone(),
    })
}

fn contains_impl_trait(tokens: TokenStream) -> bool {
    let mut prev_impl = false;
    for tt in tokens {
        match tt {
            TokenTree::Ident(ident) if ident == "impl" => prev_impl = true,
            TokenTree::Group(group) if contains_impl_trait(group.stream()) => return true,
            _ if prev_impl => return true,
            _ => {}
        }
    }
    prev_impl
}

fn mentions_self(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(ident) => ident == "Self",
        TokenTree::Group(group) => mentions_self(group.stream()),
        _ => false,
    })
}

/// The span of the function's parameter list, for errors about its parameters.
pub(crate) fn params_span(item: &ItemFn) -> proc_macro2::Span {
    if item.sig.inputs.is_empty() {
        item.sig.paren_token.span.join()
    } else {
        item.sig.inputs.span()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn analyzed(tokens: TokenStream) -> syn::Result<Function> {
        analyze(syn::parse2(tokens).unwrap())
    }

    fn messages(tokens: TokenStream) -> Vec<String> {
        let error = analyzed(tokens).expect_err("an error");
        error.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_free_async_generic_function() {
        let f = analyzed(quote! {
            pub async fn load<'a, T: Clone, const N: usize>(id: &'a str, mut n: T) -> Vec<T> { todo!() }
        })
        .unwrap();
        assert!(f.is_async && f.receiver.is_none() && !f.mentions_self);
        let names: Vec<String> = f.params.iter().map(|p| p.ident.to_string()).collect();
        assert_eq!(names, ["id", "n"]);
        assert_eq!(f.generic_args, ["T", "N"]);
        assert_eq!(f.type_params, ["T"]);
        assert_eq!(f.ret.to_token_stream().to_string(), "Vec < T >");
    }

    #[test]
    fn a_method_and_an_associated_function() {
        let method = analyzed(quote!(
            fn get(&self, id: u32) -> String {
                todo!()
            }
        ))
        .unwrap();
        assert!(method.receiver.is_some() && method.mentions_self);
        let assoc = analyzed(quote!(
            fn make(id: u32) -> Option<Self> {
                todo!()
            }
        ))
        .unwrap();
        assert!(assoc.receiver.is_none() && assoc.mentions_self);
    }

    #[test]
    fn unsupported_shapes_are_all_reported() {
        let messages = messages(quote! {
            const unsafe extern "C" fn f(&mut self, (a, b): (u8, u8), x: impl Clone) { }
        });
        assert_eq!(messages.len(), 7, "{messages:#?}");
        assert!(messages[0].contains("`const`"));
        assert!(messages[1].contains("`unsafe`"));
        assert!(messages[2].contains("`extern`"));
        assert!(messages[3].contains("nothing to cache"));
        assert!(messages[4].contains("`&mut self`"));
        assert!(messages[5].contains("plain name"));
        assert!(messages[6].contains("`impl Trait`"));
    }

    #[test]
    fn impl_trait_and_unit_returns_are_rejected() {
        assert!(
            messages(quote!(
                fn f() -> impl Clone {
                    1
                }
            ))[0]
                .contains("`impl Trait`")
        );
        assert!(
            messages(quote!(
                fn f() -> () {}
            ))[0]
                .contains("returns `()`")
        );
    }
}
