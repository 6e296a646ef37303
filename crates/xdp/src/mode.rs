//! How the program is attached to an interface.

/// The XDP mode an interface got. Native runs in the driver before any socket buffer exists;
/// generic runs later, on the socket buffer, and works on any interface (`lo` included) but
/// saves much less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachMode {
    /// Driver (native) mode.
    Native,
    /// Generic (SKB) mode: the driver has no XDP support.
    Generic,
}

/// One interface the program is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The interface name.
    pub interface: String,
    /// The mode it got.
    pub mode: AttachMode,
}
