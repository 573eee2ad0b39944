//! The concealer does not allocate after construction: it runs on the
//! playout thread. A counting global allocator watches it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use isochron_codecs::conceal::{Concealer, Lookahead, Method};
use isochron_codecs::signal::Music;
use isochron_codecs::{Encoding, Rate, SampleMask, StreamFormat};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn concealing_does_not_allocate() {
    const FRAME: usize = 441; // 10 ms at 44.1 kHz
    for method in [
        Method::Waveform,
        Method::Silence,
        Method::Hold,
        Method::Linear,
        Method::Empty,
    ] {
        for enc in [Encoding::L16, Encoding::F32] {
            let rate = Rate::hz(44_100).unwrap();
            let format = StreamFormat::new(enc, 2, rate).unwrap();
            let mut wire = vec![0u8; 64 * FRAME * format.stride()];
            Music::new(5, rate).fill_wire(enc, &mut wire);
            let full = [u64::MAX; 7];
            let none = [0u64; 7];
            let some = [0xf0f0_f0f0_f0f0_f0f0u64; 7];
            let mut c = Concealer::new(method, format, FRAME).unwrap();
            let stride = format.stride();
            let chunks: Vec<&mut [u8]> = wire.chunks_mut(FRAME * stride).collect();
            let next = vec![0u8; FRAME * stride];

            let before = ALLOCATIONS.load(Ordering::SeqCst);
            for (i, frame) in chunks.into_iter().enumerate() {
                let words = match i % 5 {
                    1 => &none,
                    3 => &some,
                    _ => &full,
                };
                let mask = SampleMask::new(words, FRAME);
                let la = (i % 2 == 0).then(|| Lookahead {
                    bytes: &next,
                    mask: SampleMask::new(&full, FRAME),
                });
                c.conceal_with(frame, mask, la).unwrap();
            }
            let after = ALLOCATIONS.load(Ordering::SeqCst);
            assert_eq!(after - before, 0, "{method} {enc:?} allocated");
            assert!(c.stats().samples > 0);
        }
    }
}
