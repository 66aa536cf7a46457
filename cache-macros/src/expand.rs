//! The expansion, one small function per emitted piece: the site, the key builder, the
//! cached call, and the typed invalidation companions. Both attributes share it.
//!
//! A free function `square` expands to the function and a companion module `square` (the
//! site static, the key builder, `invalidate`, `invalidate_all`, `key`, `stats`). A function
//! whose signature mentions `self` or `Self` (or that is marked `associated`) is an item of
//! an `impl` block, where modules cannot go, so its companions are associated functions
//! named after it: `load_invalidate`, `load_invalidate_all`, `load_key`, `load_stats`, with
//! hidden `__cache_site_load` and `__cache_key_load` beside them.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::visit_mut::VisitMut;
use syn::{AttrStyle, Attribute, Block, Generics, ItemFn, Path};

use crate::analyze::{self, Errors, Function, Param};
use crate::args::{Args, Kind, Timeout};

/// Expands one attribute, or returns every error in its arguments and function.
pub(crate) fn attribute(
    kind: Kind,
    args: TokenStream,
    item: TokenStream,
) -> syn::Result<TokenStream> {
    let item = parse_fn(kind, item)?;
    let mut args = syn::parse2::<Args>(args)?;
    let mut errors = Errors::default();
    if let Some(error) = args.take_errors() {
        errors.push(error);
    }
    if kind == Kind::Cached {
        check_cached(&args, &item, &mut errors);
    }
    let function = analyze::analyze(item);
    let ignored = match &function {
        Ok(f) => ignored(&args, f, &mut errors),
        Err(_) => Vec::new(),
    };
    let function = function.inspect_err(|error| errors.push(error.clone()));
    errors.finish()?;
    let function = function?;
    Ok(Ctx::new(kind, &args, &function, &ignored).expand())
}

/// The item as a function, or an error that says the attribute goes on functions.
fn parse_fn(kind: Kind, item: TokenStream) -> syn::Result<ItemFn> {
    syn::parse2(item.clone()).map_err(|error| {
        let has_fn = item
            .into_iter()
            .any(|tt| matches!(&tt, proc_macro2::TokenTree::Ident(ident) if ident == "fn"));
        if has_fn {
            error
        } else {
            syn::Error::new(
                error.span(),
                format!("{} caches functions: put it on a `fn`", kind.attr()),
            )
        }
    })
}

/// Where a piece of generated code sits, which decides how it names the site and key
/// builder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In the function's own body (or beside it, for associated items).
    Function,
    /// In the companion module of a free function.
    Companion,
}

/// Everything the expansion needs, checked.
struct Ctx<'a> {
    kind: Kind,
    args: &'a Args,
    f: &'a Function,
    krate: TokenStream,
    /// The parameters that enter the key, in order (none for `#[cached]`).
    key_params: Vec<&'a Param>,
    /// `self` enters the key.
    self_in_key: bool,
    /// Companions are associated functions, not a module.
    associated: bool,
}

impl<'a> Ctx<'a> {
    fn new(kind: Kind, args: &'a Args, f: &'a Function, ignored: &[Ident]) -> Self {
        let is_ignored = |ident: &Ident| ignored.iter().any(|i| i == ident);
        let keyed = kind == Kind::Memoize;
        let krate = match &args.krate {
            Some(path) => quote!(#path),
            None => quote!(::cache_core),
        };
        Self {
            kind,
            args,
            f,
            krate,
            key_params: if keyed {
                f.params.iter().filter(|p| !is_ignored(&p.ident)).collect()
            } else {
                Vec::new()
            },
            self_in_key: keyed && f.receiver.is_some() && !ignored.iter().any(|i| i == "self"),
            associated: f.mentions_self || args.associated.is_some(),
        }
    }

    fn expand(&self) -> TokenStream {
        let function = self.function();
        if self.associated {
            let site = self.site_fn();
            let key = self.key_fn(Place::Function);
            let companions = self.method_companions();
            quote!(#site #key #function #companions)
        } else {
            let module = self.companion_module();
            quote!(#function #module)
        }
    }

    fn name(&self) -> &Ident {
        self.f.name()
    }

    fn hidden(&self, what: &str) -> Ident {
        format_ident!("__cache_{}_{}", what, self.name())
    }

    fn companion(&self, suffix: &str) -> Ident {
        format_ident!("{}_{}", self.name(), suffix)
    }

    /// The `&'static Site` of the function.
    fn site(&self, place: Place) -> TokenStream {
        let name = self.name();
        match (self.associated, place) {
            (true, _) => {
                let site_fn = self.hidden("site");
                quote!(Self::#site_fn())
            }
            (false, Place::Function) => quote!(&#name::__CACHE_SITE),
            (false, Place::Companion) => quote!(&__CACHE_SITE),
        }
    }

    /// `::cache_core::__private::Site::new(..)` for this function.
    fn site_new(&self) -> TokenStream {
        let krate = &self.krate;
        let kind = match self.kind {
            Kind::Cached => quote!(Cached),
            Kind::Memoize => quote!(Memoize),
        };
        let prefix = match &self.args.key_prefix {
            Some(lit) => quote!(#krate::__private::Some(#lit)),
            None => quote!(#krate::__private::None),
        };
        // In the companion module `square`, `module_path!()` already ends in `::square`.
        let path = if self.associated {
            let name = self.name().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #name))
        } else {
            quote!(::core::module_path!())
        };
        // Keys carry `<Type>` tokens (see `key_fn`): `invalidate_all` then covers them all.
        let typed = (self.associated || !self.f.type_params.is_empty()).then(|| quote!(.typed()));
        quote!(#krate::__private::Site::new(#krate::__private::Kind::#kind, #path, #prefix)#typed)
    }

    /// The hidden function of an associated item that owns its site.
    fn site_fn(&self) -> TokenStream {
        let krate = &self.krate;
        let site_fn = self.hidden("site");
        let new = self.site_new();
        let cfgs = self.cfgs();
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            fn #site_fn() -> &'static #krate::__private::Site {
                static __CACHE_SITE: #krate::__private::Site = #new;
                &__CACHE_SITE
            }
        }
    }

    /// The `#[cfg]` attributes of the function, repeated on every companion.
    fn cfgs(&self) -> Vec<&Attribute> {
        let attrs = self.f.item.attrs.iter();
        attrs.filter(|a| a.path().is_ident("cfg")).collect()
    }

    /// The generics of the function, adjusted for `place`.
    fn generics(&self, place: Place) -> Generics {
        let mut generics = self.f.item.sig.generics.clone();
        if place == Place::Companion {
            OneLevelDeeper.visit_generics_mut(&mut generics);
        }
        generics
    }

    /// The key parameters as companion parameters: `name: Type`, each.
    fn typed_params(&self, place: Place, by_ref: bool) -> Vec<TokenStream> {
        let reference = by_ref.then(|| quote!(&));
        let params = self.key_params.iter().map(|param| {
            let ident = &param.ident;
            let mut ty = param.ty.clone();
            if place == Place::Companion {
                OneLevelDeeper.visit_type_mut(&mut ty);
            }
            quote!(#ident: #reference #ty)
        });
        params.collect()
    }

    fn turbofish(&self) -> TokenStream {
        let args = &self.f.generic_args;
        if args.is_empty() {
            TokenStream::new()
        } else {
            quote!(::<#(#args),*>)
        }
    }

    /// A call of the key builder with namespace `ns`, from `place`: the key string.
    fn key_call(&self, place: Place, ns: TokenStream) -> TokenStream {
        let site = self.site(place);
        let args = self.args_closure(place);
        quote!((#site).build(#ns, #args))
    }

    /// A closure that writes the call's arguments into a key builder (a `String` or the
    /// near key's stack buffer), from `place`.
    fn args_closure(&self, place: Place) -> TokenStream {
        let turbofish = self.turbofish();
        let key_fn = match (self.associated, place) {
            (true, _) => {
                let key_fn = self.hidden("key");
                quote!(Self::#key_fn)
            }
            (false, Place::Function) => {
                let name = self.name();
                quote!(#name::__cache_key)
            }
            (false, Place::Companion) => quote!(__cache_key),
        };
        let this = self.self_in_key.then(|| quote!(&self,));
        let params = self.key_params.iter().map(|p| &p.ident);
        quote!(|__cache_k| #key_fn #turbofish(__cache_k, #this #(&#params),*))
    }

    /// The key's arguments: a `<type>` token per type (and `Self`), then the arguments,
    /// written after the head into a key builder of any sink.
    fn key_fn(&self, place: Place) -> TokenStream {
        let krate = &self.krate;
        let generics = self.generics(place);
        let where_clause = &generics.where_clause;
        let (name, vis) = if self.associated {
            (self.hidden("key"), quote!())
        } else {
            (format_ident!("__cache_key"), quote!(pub(super)))
        };
        let receiver = self.f.receiver.as_ref().filter(|_| self.self_in_key);
        let this_param = receiver.map(|_| quote!(__cache_self: &Self,));
        let params = self.typed_params(place, true);
        let mut pushes = Vec::new();
        if self.associated {
            pushes.push(quote!(__cache_key.type_param(::core::any::type_name::<Self>());));
        }
        for ty in &self.f.type_params {
            pushes.push(quote!(__cache_key.type_param(::core::any::type_name::<#ty>());));
        }
        if let Some(receiver) = receiver {
            let span = receiver.self_span;
            pushes.push(quote_spanned!(span=> __cache_key.arg(__cache_self)?;));
        }
        for param in &self.key_params {
            let ident = &param.ident;
            // Spanned on the parameter: a type that is not `Serialize` is reported there.
            pushes.push(quote_spanned!(ident.span()=> __cache_key.arg(#ident)?;));
        }
        let cfgs = self.cfgs();
        quote! {
            #(#cfgs)*
            #[doc(hidden)]
            #vis fn #name #generics(
                __cache_key: &mut #krate::__private::KeyBuilder<impl #krate::__private::KeySink>,
                #this_param #(#params),*
            ) -> #krate::Result<()> #where_clause {
                #(#pushes)*
                #krate::__private::Ok(())
            }
        }
    }

    /// The cache of a call: the named one, or the installed default.
    fn cache(&self, place: Place) -> TokenStream {
        let krate = &self.krate;
        match &self.args.cache {
            Some(path) => {
                let mut path = path.clone();
                if place == Place::Companion {
                    OneLevelDeeper.visit_path_mut(&mut path);
                }
                let given =
                    quote_spanned!(path.span()=> let __cache_given: &#krate::Cache = &#path;);
                quote!({ #given #krate::__private::given_cache(__cache_given) })
            }
            None => {
                let site = self.site(place);
                quote!(#krate::__private::default_cache(#site))
            }
        }
    }

    /// The function, its signature and attributes as written, its body replaced.
    fn function(&self) -> TokenStream {
        let ItemFn {
            attrs,
            vis,
            sig,
            block,
        } = &self.f.item;
        let outer = attrs.iter().filter(|a| matches!(a.style, AttrStyle::Outer));
        let inner = attrs
            .iter()
            .filter(|a| !matches!(a.style, AttrStyle::Outer));
        let body = self.body(block);
        quote! {
            #(#outer)*
            #vis #sig {
                #(#inner)*
                #body
            }
        }
    }

    fn options(&self) -> TokenStream {
        let krate = &self.krate;
        let timeout = match &self.args.timeout {
            Some(timeout) => {
                let duration = self.duration(timeout);
                quote!(#krate::__private::Some(#duration))
            }
            None => quote!(#krate::__private::None),
        };
        let unless = flag_expr(self.args.unless.as_ref());
        let forced = flag_expr(self.args.forced_update.as_ref());
        let cache_none = self.args.cache_none.is_some();
        let stampede = self.stampede();
        let local = match &self.args.local {
            Some(local) => {
                let duration = self.duration(local);
                quote!(#krate::__private::Some(#duration))
            }
            None => quote!(#krate::__private::None),
        };
        quote! {
            #krate::__private::options(#timeout, #unless, #forced, #cache_none, #stampede, #local)
        }
    }

    /// With `serve_stale` on an async function whose arguments own their data (no receiver,
    /// no generics, no borrowed or `impl`/`dyn` argument types), a stale value's refresh
    /// runs in a background task; otherwise the caller that wins the refresh runs it.
    fn refreshes_in_background(&self) -> bool {
        self.args.serve_stale.is_some()
            && self.f.is_async
            && self.f.receiver.is_none()
            && self.f.item.sig.generics.params.is_empty()
            && self.f.params.iter().all(|param| owns_its_data(&param.ty))
    }

    /// A `Duration` from `timeout = 60` (seconds) or `timeout = <Duration expression>`,
    /// anchored so a wrong type is reported on the user's expression.
    fn duration(&self, timeout: &Timeout) -> TokenStream {
        let krate = &self.krate;
        match timeout {
            Timeout::Seconds(secs) => quote!(#krate::__private::seconds(#secs)),
            Timeout::Duration(expr) => {
                let anchored = quote_spanned! {expr.span()=>
                    let __cache_duration: ::core::time::Duration = #expr;
                };
                quote!({ #anchored __cache_duration })
            }
        }
    }

    /// The stampede settings: leases, early refresh, serve-stale and jitter.
    fn stampede(&self) -> TokenStream {
        let krate = &self.krate;
        let mut settings = quote!(#krate::__private::Stampede::DEFAULT);
        if let Some(lease) = &self.args.lease {
            let lease = self.duration(lease);
            settings = quote!(#settings.lease(#lease));
        }
        if let Some(grace) = &self.args.serve_stale {
            let grace = self.duration(grace);
            settings = quote!(#settings.serve_stale(#grace));
        }
        if let Some(beta) = &self.args.early_refresh {
            let beta =
                quote_spanned! {beta.span()=> { let __cache_beta: f64 = #beta; __cache_beta }};
            settings = quote!(#settings.early_refresh(#beta));
        }
        if let Some(jitter) = &self.args.jitter {
            let jitter = quote_spanned! {jitter.span()=> { let __cache_jitter: f64 = #jitter; __cache_jitter }};
            settings = quote!(#settings.jitter(#jitter));
        }
        settings
    }

    /// The new body: prepare the key, decide the options, then run the old body through
    /// the cache.
    fn body(&self, block: &Block) -> TokenStream {
        let krate = &self.krate;
        let ret = &self.f.ret;
        let codec = match &self.args.codec {
            Some(codec) => quote!(#codec),
            None => quote!(#krate::__private::DefaultCodec),
        };
        let cache = self.cache(Place::Function);
        let key = self.key_call(Place::Function, quote!(__cache_ns));
        let args = self.args_closure(Place::Function);
        let options = self.options();
        let site = self.site(Place::Function);
        // Spanned on the return type, so a type that cannot be stored is reported there.
        // Pins the async block's output to the declared type before the body, so a body of
        // the wrong type is reported on the body against the user's signature.
        let anchor = quote_spanned! {ret.span()=>
            #[allow(
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let __cache_fake_return: #ret = loop {};
                return __cache_fake_return;
            }
        };
        let call = if self.f.is_async {
            let entry = if self.refreshes_in_background() {
                quote!(call_async_detached)
            } else {
                quote!(call_async)
            };
            quote_spanned! {ret.span()=>
                #krate::__private::#entry::<#ret, _, #codec, _>(
                    __cache_prepared, #site, __cache_options, __cache_policy, async move {
                        #anchor
                        #block
                    },
                )
                .await
            }
        } else {
            quote_spanned! {ret.span()=>
                #krate::__private::call_blocking::<#ret, _, #codec>(
                    __cache_prepared, #site, __cache_options, __cache_policy, move || -> #ret #block,
                )
            }
        };
        let policy = quote_spanned! {ret.span()=>
            #[allow(unused_imports, clippy::needless_borrow)]
            use #krate::__private::{
                ProbeOption as _, ProbePlain as _, ProbeResult as _, ProbeShared as _,
            };
            #[allow(unused_imports, clippy::needless_borrow)]
            use #krate::__private::{NearProbeNo as _, NearProbeYes as _};
            (&&&#krate::__private::NearProbe::<#ret>::new())
                .near((&&&&#krate::__private::Probe::<#ret>::new()).policy())
        };
        // `local = ..`: one error on the return type if the near cache cannot hold it.
        let assert_local = self.args.local.as_ref().map(|_| {
            quote_spanned! {ret.span()=>
                #[allow(clippy::let_unit_value)]
                let _ = #krate::__private::assert_local::<#ret>;
            }
        });
        quote! {
            #assert_local
            let __cache_cache = #cache;
            let __cache_policy = { #policy };
            let __cache_options = #options;
            // Without a near cache, one branch. The options go in and out by value: a
            // borrowed local would be kept in an async function's future across its awaits.
            let (__cache_options, __cache_near) = if #krate::__private::has_near(__cache_cache) {
                match #krate::__private::near(
                    __cache_cache, #site, __cache_options, &__cache_policy, #args,
                ) {
                    #krate::__private::NearLookup::Hit(__cache_hit) => return __cache_hit,
                    #krate::__private::NearLookup::Miss(__cache_options, __cache_miss) => {
                        (__cache_options, __cache_miss)
                    }
                }
            } else {
                #krate::__private::no_near(__cache_cache, #site, __cache_options)
            };
            let __cache_prepared =
                #krate::__private::prepare(__cache_cache, __cache_near, |__cache_ns| #key);
            #call
        }
    }

    /// The pieces shared by both kinds of companions: (invalidate, invalidate_all, key,
    /// stats) bodies and signatures, minus names and receivers.
    fn companion_bodies(&self, place: Place) -> [TokenStream; 4] {
        let krate = &self.krate;
        let cache = self.cache(place);
        let site = self.site(place);
        let logical = self.key_call(place, quote!(""));
        let (forget, forget_all, wait) = if self.f.is_async {
            (quote!(forget), quote!(forget_all), quote!(.await))
        } else {
            (
                quote!(forget_blocking),
                quote!(forget_all_blocking),
                quote!(),
            )
        };
        [
            quote!(#krate::__private::#forget(#cache, #logical)#wait),
            quote!(#krate::__private::#forget_all(#cache, #site)#wait),
            logical,
            quote!((#site).stats()),
        ]
    }

    /// The companion module of a free function.
    fn companion_module(&self) -> TokenStream {
        let krate = &self.krate;
        let name = self.name();
        let vis = &self.f.item.vis;
        let asyncness = &self.f.item.sig.asyncness;
        let generics = self.generics(Place::Companion);
        let where_clause = &generics.where_clause;
        let params = self.typed_params(Place::Companion, false);
        let site_new = self.site_new();
        let key_fn = self.key_fn(Place::Companion);
        let [invalidate, invalidate_all, key, stats] = self.companion_bodies(Place::Companion);
        let cfgs = self.cfgs();
        let doc = format!(
            "Cache companions of the function `{name}`: forget one entry, forget them all, \
             see a key, read the counters."
        );
        quote! {
            #(#cfgs)*
            #[doc = #doc]
            #[allow(dead_code)]
            #vis mod #name {
                #[allow(unused_imports)]
                use super::*;

                #[doc(hidden)]
                pub(super) static __CACHE_SITE: #krate::__private::Site = #site_new;

                #key_fn

                /// Forgets the cached result of these arguments; true if there was one.
                pub #asyncness fn invalidate #generics(#(#params),*) -> #krate::Result<bool>
                #where_clause {
                    #invalidate
                }

                /// Forgets every cached result of the function; returns how many.
                pub #asyncness fn invalidate_all() -> #krate::Result<u64> {
                    #invalidate_all
                }

                /// The key of these arguments, without the cache's namespace.
                pub fn key #generics(#(#params),*) -> #krate::Result<#krate::__private::String>
                #where_clause {
                    #key
                }

                /// The function's hit, miss and store counters.
                pub fn stats() -> #krate::StatsSnapshot {
                    #stats
                }
            }
        }
    }

    /// The companions of an associated function: `name_invalidate` and friends.
    fn method_companions(&self) -> TokenStream {
        let krate = &self.krate;
        let vis = &self.f.item.vis;
        let asyncness = &self.f.item.sig.asyncness;
        let generics = self.generics(Place::Function);
        let where_clause = &generics.where_clause;
        let this = self.self_in_key.then(|| quote!(&self,));
        let params = self.typed_params(Place::Function, false);
        let [invalidate, invalidate_all, key, stats] = self.companion_bodies(Place::Function);
        let names = ["invalidate", "invalidate_all", "key", "stats"].map(|s| self.companion(s));
        let [n_invalidate, n_invalidate_all, n_key, n_stats] = &names;
        let name = self.name().to_string();
        let docs = [
            format!(
                "Forgets the cached result of `{name}` for these arguments; true if there was one."
            ),
            format!("Forgets every cached result of `{name}`; returns how many."),
            format!("The key of `{name}` for these arguments, without the cache's namespace."),
            format!("The hit, miss and store counters of `{name}`."),
        ];
        let [d_invalidate, d_invalidate_all, d_key, d_stats] = &docs;
        let cfgs = self.cfgs();
        quote! {
            #(#cfgs)*
            #[doc = #d_invalidate]
            #[allow(dead_code)]
            #vis #asyncness fn #n_invalidate #generics(#this #(#params),*) -> #krate::Result<bool>
            #where_clause {
                #invalidate
            }

            #(#cfgs)*
            #[doc = #d_invalidate_all]
            #[allow(dead_code)]
            #vis #asyncness fn #n_invalidate_all() -> #krate::Result<u64> {
                #invalidate_all
            }

            #(#cfgs)*
            #[doc = #d_key]
            #[allow(dead_code)]
            #vis fn #n_key #generics(#this #(#params),*) -> #krate::Result<#krate::__private::String>
            #where_clause {
                #key
            }

            #(#cfgs)*
            #[doc = #d_stats]
            #[allow(dead_code)]
            #vis fn #n_stats() -> #krate::StatsSnapshot {
                #stats
            }
        }
    }
}

/// The idents listed in `ignore = [..]`, each checked against the parameters.
fn ignored(args: &Args, f: &Function, errors: &mut Errors) -> Vec<Ident> {
    let Some((_, list)) = &args.ignore else {
        return Vec::new();
    };
    for ident in list {
        let found = if ident == "self" {
            f.receiver.is_some()
        } else {
            f.params.iter().any(|p| p.ident == *ident)
        };
        if !found {
            let names: Vec<String> = f
                .receiver
                .iter()
                .map(|_| "`self`".to_owned())
                .chain(f.params.iter().map(|p| format!("`{}`", p.ident)))
                .collect();
            let known = if names.is_empty() {
                "the function has no parameters".to_owned()
            } else {
                format!("the parameters are {}", names.join(", "))
            };
            errors.push(syn::Error::new(
                ident.span(),
                format!("`ignore` names `{ident}`, which is not a parameter; {known}"),
            ));
        }
    }
    list.clone()
}

/// `#[cached]` keeps one entry whatever the arguments: with parameters, it needs a
/// `key_prefix` (so the single entry is named on purpose), and `ignore` means nothing.
fn check_cached(args: &Args, item: &ItemFn, errors: &mut Errors) {
    if let Some((span, _)) = &args.ignore {
        errors.push(syn::Error::new(
            *span,
            format!(
                "`ignore` has no effect with {}, whose key never includes arguments; remove \
                 it, or use #[memoize]",
                Kind::Cached.attr()
            ),
        ));
    }
    if args.key_prefix.is_none() && !item.sig.inputs.is_empty() {
        errors.push(syn::Error::new(
            analyze::params_span(item),
            "#[cached] keeps ONE entry whatever the arguments, so on a function with \
             parameters it needs `key_prefix = \"...\"` to say so; to cache one entry per \
             argument list, use #[memoize]",
        ));
    }
}

/// Rewrites relative paths for code moved one module down (into the companion module):
/// `self::x` becomes `super::x`, `super::x` becomes `super::super::x`.
struct OneLevelDeeper;

impl VisitMut for OneLevelDeeper {
    fn visit_path_mut(&mut self, path: &mut Path) {
        if path.leading_colon.is_none()
            && let Some(first) = path.segments.first_mut()
        {
            if first.ident == "self" {
                first.ident = Ident::new("super", first.ident.span());
            } else if first.ident == "super" {
                let span = first.ident.span();
                path.segments.insert(0, Ident::new("super", span).into());
            }
        }
        syn::visit_mut::visit_path_mut(self, path);
    }
}

/// True when `ty` has no reference, lifetime, `impl` or `dyn` in it (so, barring a
/// non-`Send` type, a future owning a value of it can move to another task).
fn owns_its_data(ty: &syn::Type) -> bool {
    fn clean(tokens: TokenStream) -> bool {
        tokens.into_iter().all(|token| match token {
            proc_macro2::TokenTree::Punct(p) => p.as_char() != '&' && p.as_char() != '\'',
            proc_macro2::TokenTree::Ident(i) => i != "impl" && i != "dyn" && i != "Self",
            proc_macro2::TokenTree::Group(g) => clean(g.stream()),
            proc_macro2::TokenTree::Literal(_) => true,
        })
    }
    clean(quote!(#ty))
}

/// A `bool` option's expression, anchored so a wrong type is reported on it alone.
fn flag_expr(expr: Option<&syn::Expr>) -> TokenStream {
    match expr {
        Some(expr) => {
            quote_spanned! {expr.span()=> { let __cache_flag: bool = #expr; __cache_flag }}
        }
        None => quote!(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owned_argument_types_refresh_in_the_background() {
        let owned: [syn::Type; 3] = [
            syn::parse_quote!(u64),
            syn::parse_quote!(String),
            syn::parse_quote!(Vec<(u8, Option<String>)>),
        ];
        let borrowed: [syn::Type; 4] = [
            syn::parse_quote!(&str),
            syn::parse_quote!(Cow<'a, str>),
            syn::parse_quote!(Box<dyn Fn()>),
            syn::parse_quote!(Vec<&'static str>),
        ];
        assert!(owned.iter().all(super::owns_its_data));
        assert!(!borrowed.iter().any(super::owns_its_data));
    }
    use quote::quote;

    fn expand(kind: Kind, args: TokenStream, item: TokenStream) -> String {
        attribute(kind, args, item).unwrap().to_string()
    }

    fn errors(kind: Kind, args: TokenStream, item: TokenStream) -> Vec<String> {
        let error = attribute(kind, args, item).expect_err("an error");
        error.into_iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_free_function_gets_a_companion_module() {
        let out = expand(
            Kind::Memoize,
            quote!(timeout = 60),
            quote!(
                pub fn square(num: u64) -> String {
                    num.to_string()
                }
            ),
        );
        assert!(out.contains("pub fn square (num : u64) -> String"), "{out}");
        assert!(out.contains("pub mod square"), "{out}");
        for companion in ["fn invalidate", "fn invalidate_all", "fn key", "fn stats"] {
            assert!(out.contains(companion), "{companion} in {out}");
        }
        assert!(
            out.contains(":: cache_core :: __private :: call_blocking"),
            "{out}"
        );
        assert!(out.contains("seconds (60)"), "{out}");
        assert!(out.contains("__cache_key . arg (num) ?"), "{out}");
    }

    #[test]
    fn a_method_gets_associated_companions() {
        let out = expand(
            Kind::Memoize,
            quote!(),
            quote!(
                async fn load(&self, id: u32) -> Option<String> {
                    None
                }
            ),
        );
        assert!(!out.contains(" mod "), "{out}");
        for companion in [
            "async fn load_invalidate (& self , id : u32)",
            "async fn load_invalidate_all ()",
            "fn load_key (& self , id : u32)",
            "fn load_stats ()",
            "fn __cache_site_load ()",
            "fn __cache_key_load",
        ] {
            assert!(out.contains(companion), "{companion} in {out}");
        }
        assert!(out.contains("call_async"), "{out}");
        assert!(out.contains("type_name :: < Self >"), "{out}");
    }

    #[test]
    fn ignoring_self_leaves_the_receiver_out_of_the_companions() {
        let out = expand(
            Kind::Memoize,
            quote!(ignore = [self]),
            quote!(
                fn load(&self, id: u32) -> u32 {
                    id
                }
            ),
        );
        assert!(out.contains("fn load_key (id : u32)"), "{out}");
        assert!(!out.contains("__cache_self"), "{out}");
    }

    #[test]
    fn generic_parameters_enter_the_key_and_the_turbofish() {
        let out = expand(
            Kind::Memoize,
            quote!(),
            quote!(
                fn first<'a, T: Clone, const N: usize>(items: &'a [T; N]) -> T {
                    items[0].clone()
                }
            ),
        );
        assert!(out.contains("type_name :: < T > ()"), "{out}");
        assert!(out.contains("__cache_key :: < T , N >"), "{out}");
    }

    #[test]
    fn cached_keys_hold_no_argument() {
        let out = expand(
            Kind::Cached,
            quote!(key_prefix = "page"),
            quote!(
                fn page(user: u32) -> String {
                    user.to_string()
                }
            ),
        );
        assert!(!out.contains(". arg ("), "{out}");
        assert!(out.contains("pub fn invalidate () ->"), "{out}");
        assert!(out.contains("Some (\"page\")"), "{out}");
    }

    #[test]
    fn the_crate_path_is_used_everywhere() {
        let out = expand(
            Kind::Memoize,
            quote!(crate = "my_cache"),
            quote!(
                fn square(num: u64) -> u64 {
                    num
                }
            ),
        );
        assert!(!out.contains("cache_core"), "{out}");
        assert!(out.contains("my_cache :: __private :: Site"), "{out}");
    }

    #[test]
    fn relative_paths_move_one_level_down_in_the_companion_module() {
        let out = expand(
            Kind::Memoize,
            quote!(cache = self::CACHE),
            quote!(
                fn f(a: &super::A, b: self::B) -> u8 {
                    0
                }
            ),
        );
        let module = &out[out.find("mod f").unwrap()..];
        assert!(module.contains("a : & super :: super :: A"), "{module}");
        assert!(module.contains("b : super :: B"), "{module}");
        assert!(module.contains("& super :: CACHE"), "{module}");
    }

    #[test]
    fn generated_locals_start_with_cache() {
        let out = expand(
            Kind::Memoize,
            quote!(),
            quote!(
                async fn f(a: u8) -> u8 {
                    a
                }
            ),
        );
        for word in out.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("__") {
                assert!(
                    word.starts_with("__cache_")
                        || word.starts_with("__CACHE_")
                        || word == "__private",
                    "{word}"
                );
            }
        }
    }

    #[test]
    fn argument_and_shape_errors_are_reported_together() {
        let messages = errors(
            Kind::Cached,
            quote!(timout = 1, ignore = [x]),
            quote!(
                const fn page(user: u32) -> String {
                    String::new()
                }
            ),
        );
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].starts_with("unknown option `timout`"));
        assert!(messages[1].contains("`ignore` has no effect with #[cached]"));
        assert!(messages[2].contains("needs `key_prefix"));
        assert!(messages[3].contains("`const`"));
    }

    #[test]
    fn cached_with_parameters_suggests_memoize() {
        let messages = errors(
            Kind::Cached,
            quote!(),
            quote!(
                fn page(user: u32) -> String {
                    String::new()
                }
            ),
        );
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains("use #[memoize]"));
    }

    #[test]
    fn a_missing_ignored_parameter_lists_the_real_ones() {
        let messages = errors(
            Kind::Memoize,
            quote!(ignore = [db]),
            quote!(
                fn load(&self, id: u32) -> u32 {
                    id
                }
            ),
        );
        assert_eq!(
            messages,
            ["`ignore` names `db`, which is not a parameter; the parameters are `self`, `id`"]
        );
    }

    #[test]
    fn a_non_function_is_refused_by_name() {
        let messages = errors(
            Kind::Memoize,
            quote!(),
            quote!(
                struct S;
            ),
        );
        assert_eq!(messages, ["#[memoize] caches functions: put it on a `fn`"]);
    }
}
