//! The connector's allocator on `wasm32-unknown-unknown`: a bump arena in the free space of
//! the instance's initial memory, with the standard allocator behind it.
//!
//! The host gives every call a fresh instance and throws it away afterwards, so most calls
//! (a webhook, a poll request) allocate a few kilobytes and free nothing that matters. The
//! arena serves those from the memory between the end of the data (`__heap_base`) and the
//! end of the initial memory, which the standard allocator never uses (it asks for new pages
//! on its first allocation). Such a call never grows its memory, and the pages it writes sit
//! next to each other, so the host resets fewer of them after the call. An allocation that
//! does not fit goes to the standard allocator, so a large poll answer is handled as before.
//!
//! Freeing the newest arena block, or growing it, works in place (a growing `Vec` or
//! `String` being built is the usual case); other arena blocks are freed with the instance.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use std::alloc::System;

/// The allocator. Installed by the SDK for `wasm32-unknown-unknown` builds.
pub struct Arena {
    /// First byte of the arena; 0 before the first allocation.
    start: Cell<usize>,
    /// Next free byte.
    next: Cell<usize>,
    /// One past the arena's last byte.
    end: Cell<usize>,
}

// SAFETY: a `wasm32-unknown-unknown` instance has one thread.
unsafe impl Sync for Arena {}

impl Arena {
    /// An arena that finds its bounds on first use.
    pub const fn new() -> Self {
        Arena {
            start: Cell::new(0),
            next: Cell::new(0),
            end: Cell::new(0),
        }
    }

    /// Sets the arena's bounds (`start` must be non-zero).
    fn set_bounds(&self, start: usize, end: usize) {
        self.start.set(start);
        self.next.set(start);
        self.end.set(end.max(start));
    }

    /// The next free byte and the arena's end, the bounds found on first use.
    fn bounds(&self) -> (usize, usize) {
        if self.start.get() == 0 {
            let (start, end) = region();
            self.set_bounds(start, end);
        }
        (self.next.get(), self.end.get())
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.start.get() && p < self.end.get()
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (next, end) = self.bounds();
        // `Layout` alignments are powers of two: a mask, not a division.
        let mask = layout.align() - 1;
        let start = next.checked_add(mask).map(|n| n & !mask);
        match start.and_then(|s| s.checked_add(layout.size())) {
            Some(stop) if stop <= end => {
                self.next.set(stop);
                (stop - layout.size()) as *mut u8
            }
            // SAFETY: the caller's contract is passed on.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.contains(ptr) {
            if ptr as usize + layout.size() == self.next.get() {
                self.next.set(ptr as usize);
            }
        } else {
            // SAFETY: `ptr` came from `System` with this layout.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.contains(ptr) {
            // SAFETY: `ptr` came from `System` with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let p = ptr as usize;
        let newest = p + layout.size() == self.next.get();
        if newest
            && p.checked_add(new_size)
                .is_some_and(|stop| stop <= self.end.get())
        {
            self.next.set(p + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `layout.align()` is a valid alignment and `new_size` is non-zero.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`; the old block is valid for `layout.size()` bytes.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                core::ptr::copy_nonoverlapping(ptr, moved, layout.size());
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
unsafe extern "C" {
    /// Set by the linker: the first byte after the module's stack and data.
    static __heap_base: u8;
}

/// The free space of the initial memory: from `__heap_base` to the memory's end.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn region() -> (usize, usize) {
    (
        &raw const __heap_base as usize,
        core::arch::wasm32::memory_size::<0>() * 65536,
    )
}

/// Off wasm there is no initial memory: every allocation goes to the standard allocator.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn region() -> (usize, usize) {
    (usize::MAX, usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An arena over a leaked 64-byte buffer.
    fn arena() -> (Arena, usize) {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 64].into_boxed_slice());
        let start = buf.as_mut_ptr() as usize;
        let a = Arena::new();
        a.set_bounds(start, start + 64);
        (a, start)
    }

    #[test]
    fn small_blocks_come_from_the_arena_and_the_newest_is_freed_or_grown_in_place() {
        let (a, start) = arena();
        let l8 = Layout::from_size_align(8, 8).unwrap();
        unsafe {
            let p = a.alloc(l8);
            assert_eq!(p as usize, start);
            let q = a.alloc(l8);
            assert_eq!(q as usize, start + 8);
            // The newest block grows in place.
            let q2 = a.realloc(q, l8, 24);
            assert_eq!(q2, q);
            assert_eq!(a.next.get(), start + 32);
            // Freeing the newest block gives its space back.
            a.dealloc(q2, Layout::from_size_align(24, 8).unwrap());
            assert_eq!(a.next.get(), start + 8);
            // An older block that grows moves, its bytes with it.
            p.write(7);
            let _r = a.alloc(l8);
            let p2 = a.realloc(p, l8, 16);
            assert_ne!(p2, p);
            assert_eq!(p2.read(), 7);
            assert!(a.contains(p2));
        }
    }

    #[test]
    fn what_does_not_fit_goes_to_the_standard_allocator_and_back() {
        let (a, start) = arena();
        let big = Layout::from_size_align(100, 8).unwrap();
        unsafe {
            let p = a.alloc(big);
            assert!(!p.is_null() && !a.contains(p));
            p.write_bytes(1, 100);
            // Growing an arena block past the arena's end moves it out.
            let small = Layout::from_size_align(40, 8).unwrap();
            let q = a.alloc(small);
            assert_eq!(q as usize, start);
            q.write(9);
            let q2 = a.realloc(q, small, 200);
            assert!(!a.contains(q2));
            assert_eq!(q2.read(), 9);
            a.dealloc(q2, Layout::from_size_align(200, 8).unwrap());
            a.dealloc(p, big);
            // The arena's space came back when its newest block left.
            assert_eq!(a.next.get(), start);
        }
    }

    #[test]
    fn alignment_is_honoured() {
        let (a, start) = arena();
        unsafe {
            a.alloc(Layout::from_size_align(1, 1).unwrap());
            let p = a.alloc(Layout::from_size_align(8, 16).unwrap());
            assert_eq!(p as usize % 16, 0);
            assert!(p as usize > start);
        }
    }
}
