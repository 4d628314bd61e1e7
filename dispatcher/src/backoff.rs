//! The one backoff of every retry loop in the dispatcher: steps that double from `first` up to
//! `max`, each pause drawn from the upper half of its step, so replicas that failed together do
//! not retry together and no pause is close to zero.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff { first, max: max.max(first), step: first }
    }

    /// The next pause: between half the current step and the step; the step then doubles.
    pub fn next_pause(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }

    /// The longest the next pause can be.
    pub fn step(&self) -> Duration {
        self.step
    }

    /// After a success: start from the first step again.
    pub fn reset(&mut self) {
        self.step = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_within_jittered_bounds_up_to_the_cap_and_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(450));
        for step in [100, 200, 400, 450, 450] {
            assert_eq!(b.step(), ms(step));
            let pause = b.next_pause();
            assert!(pause >= ms(step) / 2 && pause <= ms(step), "{pause:?} for a {step} ms step");
        }
        b.reset();
        assert_eq!(b.step(), ms(100));
        assert_eq!(Backoff::new(ms(50), ms(10)).step(), ms(50), "a cap below the first step is the first step");
    }
}
