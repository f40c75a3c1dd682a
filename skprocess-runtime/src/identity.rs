//! Which code this process runs: the executable's identity (checked by every child against its
//! parent's before it runs anything), and which loaded image an address belongs to (a pool task
//! travels as an offset within the executable, so its code must live there).

use std::sync::OnceLock;

/// The identity of this executable: its GNU build id, or (without one) the file's device,
/// inode, size and modification time, side by side. Computed once.
///
/// `None` when neither can be read: then no child can prove it runs the same code, and nothing
/// is started (fail closed: two empty identities must never compare equal).
pub(crate) fn executable_identity() -> Option<&'static [u8]> {
    static IDENTITY: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| build_id().or_else(file_identity))
        .as_deref()
        .filter(|id| !id.is_empty())
}

fn build_id() -> Option<Vec<u8>> {
    struct Found(Option<Vec<u8>>);
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: the loader passes a valid info for the current object; `data` is our `Found`.
        let (info, found) = unsafe { (&*info, &mut *data.cast::<Found>()) };
        // The first object is the main program.
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers of this loaded object.
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        for header in headers.iter().filter(|h| h.p_type == libc::PT_NOTE) {
            let start = (info.dlpi_addr as usize).wrapping_add(header.p_vaddr as usize);
            // SAFETY: a PT_NOTE segment of a loaded object is mapped and readable for its size.
            let notes =
                unsafe { std::slice::from_raw_parts(start as *const u8, header.p_memsz as usize) };
            if let Some(id) = find_build_id(notes) {
                found.0 = Some(id);
                break;
            }
        }
        1 // stop after the main program
    }
    let mut found = Found(None);
    // SAFETY: the callback only reads what the loader hands it and writes into `found`.
    unsafe { libc::dl_iterate_phdr(Some(callback), (&raw mut found).cast()) };
    found.0
}

/// Finds the NT_GNU_BUILD_ID note in a run of ELF notes.
fn find_build_id(mut notes: &[u8]) -> Option<Vec<u8>> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let word = |i: usize| u32::from_ne_bytes(notes[i..i + 4].try_into().expect("4 bytes"));
        let (namesz, descsz, kind) = (word(0) as usize, word(4) as usize, word(8));
        let name_end = 12 + align4(namesz);
        let desc_end = name_end + align4(descsz);
        if desc_end > notes.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && &notes[12..12 + namesz] == b"GNU\0" {
            return Some(notes[name_end..name_end + descsz].to_vec());
        }
        notes = &notes[desc_end..];
    }
    None
}

fn file_identity() -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata("/proc/self/exe").ok()?;
    let mut id = b"file:".to_vec();
    for field in [meta.dev(), meta.ino(), meta.size()] {
        id.extend_from_slice(&field.to_le_bytes());
    }
    id.extend_from_slice(&meta.mtime().to_le_bytes());
    id.extend_from_slice(&meta.mtime_nsec().to_le_bytes());
    Some(id)
}

/// Whether `address` lies in the same loaded image (executable or shared library) as this
/// crate's own code. A pool task whose code lies elsewhere (a `dylib` or a plugin loaded at run
/// time) cannot travel as an offset: the worker may not have that image at that place.
pub(crate) fn in_this_image(address: usize) -> bool {
    let here = in_this_image as fn(usize) -> bool as usize;
    match (
        crate::sys::image_base(here),
        crate::sys::image_base(address),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_executable_has_an_identity() {
        let id = executable_identity().expect("an identity");
        assert!(!id.is_empty());
        assert_eq!(executable_identity(), Some(id));
    }

    #[test]
    fn build_id_notes_parse() {
        let mut notes = Vec::new();
        // an unrelated note first
        notes.extend_from_slice(&4u32.to_ne_bytes());
        notes.extend_from_slice(&4u32.to_ne_bytes());
        notes.extend_from_slice(&1u32.to_ne_bytes());
        notes.extend_from_slice(b"ABC\0");
        notes.extend_from_slice(&[9, 9, 9, 9]);
        // the build id
        notes.extend_from_slice(&4u32.to_ne_bytes());
        notes.extend_from_slice(&3u32.to_ne_bytes());
        notes.extend_from_slice(&3u32.to_ne_bytes());
        notes.extend_from_slice(b"GNU\0");
        notes.extend_from_slice(&[1, 2, 3, 0]);
        assert_eq!(find_build_id(&notes), Some(vec![1, 2, 3]));
        assert_eq!(find_build_id(&notes[..20]), None);
    }

    #[test]
    fn code_of_this_crate_is_in_this_image_and_libc_is_not() {
        assert!(in_this_image(
            executable_identity as fn() -> Option<&'static [u8]> as usize
        ));
        assert!(!in_this_image(
            libc::abort as unsafe extern "C" fn() -> ! as usize
        ));
        assert!(!in_this_image(0));
    }
}
