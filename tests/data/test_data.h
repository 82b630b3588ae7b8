/* The two halves of the data suite: test_data.c registers its tests, then these. */
#ifndef DK_TEST_DATA_H
#define DK_TEST_DATA_H

/* Register the sampling, augmentation and determinism tests (test_data_sampling.c). */
void add_sampling_tests(void);

/* Register the spatial map and blur tests (test_augment_spatial.c). */
void add_spatial_tests(void);

/* Register the case list's spacing column tests (test_case_spacing.c). */
void add_spacing_tests(void);

#endif
