//! The ES modules a machine bundle can import, and the bundle itself.
//!
//! Specifiers (exact strings; anything else fails to resolve, which fails `load`):
//! - `npm:xstate`, `xstate`, `npm:xstate@4`, `xstate@4`, `npm:xstate@4.38.3`: XState 4.38.3;
//! - `npm:xstate@5`, `xstate@5`, `xstate5`, `npm:xstate@5.33.3`: XState 5.33.3;
//! - `statewire:machine`: the bundle given to `load` (the glue imports it from there).
//!
//! Every specifier of one library resolves to one module name, so a bundle that mixes
//! `xstate` and `npm:xstate` still gets a single copy. Modules are compiled on first import
//! only: a machine that never imports XState 5 never pays for it.

use std::cell::RefCell;
use std::rc::Rc;

use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};

/// The module name the bundle given to `load` is served under.
pub const BUNDLE: &str = "statewire:machine";
const XSTATE4: &str = "npm:xstate@4.38.3";
const XSTATE5: &str = "npm:xstate@5.33.3";

static XSTATE4_SOURCE: &str = include_str!(concat!(
    env!(
        "STATEWIRE_GUEST_JS_DIR",
        "build the guest with scripts/build-guest.sh, which builds the JS assets first"
    ),
    "/xstate4.mjs"
));
static XSTATE5_SOURCE: &str = include_str!(concat!(env!("STATEWIRE_GUEST_JS_DIR"), "/xstate5.mjs"));
/// The glue script, evaluated once when the engine starts.
pub static GLUE_SOURCE: &str = include_str!(concat!(env!("STATEWIRE_GUEST_JS_DIR"), "/glue.js"));

/// The bundle waiting to be imported under [`BUNDLE`]; taken (and so freed) when imported.
#[derive(Clone, Default)]
pub struct PendingBundle(Rc<RefCell<Option<String>>>);

impl PendingBundle {
    pub fn put(&self, source: String) {
        *self.0.borrow_mut() = Some(source);
    }
}

/// Maps a specifier to its module name; the importing module does not matter.
pub struct Specifiers;

impl Resolver for Specifiers {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        let resolved = match name {
            "npm:xstate" | "xstate" | "npm:xstate@4" | "xstate@4" | XSTATE4 => XSTATE4,
            "npm:xstate@5" | "xstate@5" | "xstate5" | XSTATE5 => XSTATE5,
            BUNDLE => BUNDLE,
            _ => {
                return Err(Error::new_resolving_message(
                    base,
                    name,
                    "only npm:xstate (4.38.3) and npm:xstate@5 (5.33.3) can be imported",
                ))
            }
        };
        Ok(resolved.to_owned())
    }
}

/// Declares the module behind a resolved name.
pub struct Sources {
    pub bundle: PendingBundle,
}

impl Loader for Sources {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<Module<'js, Declared>> {
        match name {
            XSTATE4 => Module::declare(ctx.clone(), name, XSTATE4_SOURCE),
            XSTATE5 => Module::declare(ctx.clone(), name, XSTATE5_SOURCE),
            BUNDLE => match self.bundle.0.borrow_mut().take() {
                Some(source) => Module::declare(ctx.clone(), name, source),
                None => Err(Error::new_loading(name)),
            },
            _ => Err(Error::new_loading(name)),
        }
    }
}
