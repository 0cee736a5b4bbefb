%!PS-Adobe-3.0 EPSF-3.0
%%LanguageLevel: 3
%%Creator: None
%%CreationDate: Thu Jan 01 00:00:00 1970
%%Orientation: portrait
%%BoundingBox: 0 0 116 87
%%HiResBoundingBox: 0.000000 0.000000 115.200000 86.400000
%%EndComments
%%BeginProlog
/mpldict 10 dict def
mpldict begin
/_d { bind def } bind def
/m { moveto } _d
/l { lineto } _d
/r { rlineto } _d
/c { curveto } _d
/cl { closepath } _d
/ce { closepath eofill } _d
/sc { setcachedevice } _d
%!PS-Adobe-3.0 Resource-Font
%%Creator: Converted from TrueType to Type 3 by Matplotlib.
10 dict begin
/FontName /DejaVuSans-0 def
/PaintType 0 def
/FontMatrix [0.00048828125 0 0 0.00048828125 0 0] def
/FontBBox [-2090 -948 3673 2524] def
/FontType 3 def
/Encoding [/zero /two /s /a /m /p /l /e /space /three /nine] def
/CharStrings 12 dict dup begin
/.notdef 0 def
/zero{1303 0 135 -29 1167 1520 sc
651 1360 m
547 1360 469 1309 416 1206 c
364 1104 338 950 338 745 c
338 540 364 387 416 284 c
469 182 547 131 651 131 c
756 131 834 182 886 284 c
939 387 965 540 965 745 c
965 950 939 1104 886 1206 c
834 1309 756 1360 651 1360 c

651 1520 m
818 1520 946 1454 1034 1321 c
1123 1189 1167 997 1167 745 c
1167 494 1123 302 1034 169 c
946 37 818 -29 651 -29 c
484 -29 356 37 267 169 c
179 302 135 494 135 745 c
135 997 179 1189 267 1321 c
356 1454 484 1520 651 1520 c

ce} _d
/two{1303 0 150 0 1098 1520 sc
393 170 m
1098 170 l
1098 0 l
150 0 l
150 170 l
227 249 331 356 463 489 c
596 623 679 709 713 748 c
778 821 823 882 848 932 c
874 983 887 1032 887 1081 c
887 1160 859 1225 803 1275 c
748 1325 675 1350 586 1350 c
523 1350 456 1339 385 1317 c
315 1295 240 1262 160 1217 c
160 1421 l
241 1454 317 1478 388 1495 c
459 1512 523 1520 582 1520 c
737 1520 860 1481 952 1404 c
1044 1327 1090 1223 1090 1094 c
1090 1033 1078 974 1055 919 c
1032 864 991 800 930 725 c
913 706 860 650 771 557 c
682 465 556 336 393 170 c

ce} _d
/s{1067 0 111 -29 967 1147 sc
907 1087 m
907 913 l
855 940 801 960 745 973 c
689 986 631 993 571 993 c
480 993 411 979 365 951 c
320 923 297 881 297 825 c
297 782 313 749 346 724 c
379 700 444 677 543 655 c
606 641 l
737 613 829 573 884 522 c
939 471 967 400 967 309 c
967 205 926 123 843 62 c
761 1 648 -29 504 -29 c
444 -29 381 -23 316 -11 c
251 0 183 18 111 41 c
111 231 l
179 196 246 169 312 151 c
378 134 443 125 508 125 c
595 125 661 140 708 169 c
755 199 778 241 778 295 c
778 345 761 383 727 410 c
694 437 620 462 506 487 c
442 502 l
328 526 246 563 195 612 c
144 662 119 730 119 817 c
119 922 156 1004 231 1061 c
306 1118 412 1147 549 1147 c
617 1147 681 1142 741 1132 c
801 1122 856 1107 907 1087 c

ce} _d
/a{1255 0 123 -29 1069 1147 sc
702 563 m
553 563 450 546 393 512 c
336 478 307 420 307 338 c
307 273 328 221 371 182 c
414 144 473 125 547 125 c
649 125 731 161 792 233 c
854 306 885 402 885 522 c
885 563 l
702 563 l

1069 639 m
1069 0 l
885 0 l
885 170 l
843 102 791 52 728 19 c
665 -13 589 -29 498 -29 c
383 -29 292 3 224 67 c
157 132 123 218 123 326 c
123 452 165 547 249 611 c
334 675 460 707 627 707 c
885 707 l
885 725 l
885 810 857 875 801 921 c
746 968 668 991 567 991 c
503 991 441 983 380 968 c
319 953 261 930 205 899 c
205 1069 l
272 1095 338 1114 401 1127 c
464 1140 526 1147 586 1147 c
748 1147 869 1105 949 1021 c
1029 937 1069 810 1069 639 c

ce} _d
/m{1995 0 186 0 1821 1147 sc
1065 905 m
1111 988 1166 1049 1230 1088 c
1294 1127 1369 1147 1456 1147 c
1573 1147 1663 1106 1726 1024 c
1789 943 1821 827 1821 676 c
1821 0 l
1636 0 l
1636 670 l
1636 777 1617 857 1579 909 c
1541 961 1483 987 1405 987 c
1310 987 1234 955 1179 892 c
1124 829 1096 742 1096 633 c
1096 0 l
911 0 l
911 670 l
911 778 892 858 854 909 c
816 961 757 987 678 987 c
584 987 509 955 454 891 c
399 828 371 742 371 633 c
371 0 l
186 0 l
186 1120 l
371 1120 l
371 946 l
413 1015 463 1065 522 1098 c
581 1131 650 1147 731 1147 c
812 1147 881 1126 938 1085 c
995 1044 1038 984 1065 905 c

ce} _d
/p{1300 0 186 -426 1188 1147 sc
371 168 m
371 -426 l
186 -426 l
186 1120 l
371 1120 l
371 950 l
410 1017 458 1066 517 1098 c
576 1131 647 1147 729 1147 c
865 1147 975 1093 1060 985 c
1145 877 1188 735 1188 559 c
1188 383 1145 241 1060 133 c
975 25 865 -29 729 -29 c
647 -29 576 -13 517 19 c
458 52 410 101 371 168 c

997 559 m
997 694 969 800 913 877 c
858 954 781 993 684 993 c
587 993 510 954 454 877 c
399 800 371 694 371 559 c
371 424 399 317 454 240 c
510 163 587 125 684 125 c
781 125 858 163 913 240 c
969 317 997 424 997 559 c

ce} _d
/l{569 0 193 0 377 1556 sc
193 1556 m
377 1556 l
377 0 l
193 0 l
193 1556 l

ce} _d
/e{1260 0 113 -29 1151 1147 sc
1151 606 m
1151 516 l
305 516 l
313 389 351 293 419 226 c
488 160 583 127 705 127 c
776 127 844 136 910 153 c
977 170 1043 196 1108 231 c
1108 57 l
1042 29 974 8 905 -7 c
836 -22 765 -29 694 -29 c
515 -29 374 23 269 127 c
165 231 113 372 113 549 c
113 732 162 878 261 985 c
360 1093 494 1147 662 1147 c
813 1147 932 1098 1019 1001 c
1107 904 1151 773 1151 606 c

967 660 m
966 761 937 841 882 901 c
827 961 755 991 664 991 c
561 991 479 962 417 904 c
356 846 320 764 311 659 c
967 660 l

ce} _d
/space{651 0 0 0 0 0 sc
ce} _d
/three{1303 0 156 -29 1139 1520 sc
831 805 m
928 784 1003 741 1057 676 c
1112 611 1139 530 1139 434 c
1139 287 1088 173 987 92 c
886 11 742 -29 555 -29 c
492 -29 428 -23 361 -10 c
295 2 227 20 156 45 c
156 240 l
212 207 273 183 340 166 c
407 149 476 141 549 141 c
676 141 772 166 838 216 c
905 266 938 339 938 434 c
938 522 907 591 845 640 c
784 690 698 715 588 715 c
414 715 l
414 881 l
596 881 l
695 881 771 901 824 940 c
877 980 903 1037 903 1112 c
903 1189 876 1247 821 1288 c
767 1329 689 1350 588 1350 c
533 1350 473 1344 410 1332 c
347 1320 277 1301 201 1276 c
201 1456 l
278 1477 349 1493 416 1504 c
483 1515 547 1520 606 1520 c
759 1520 881 1485 970 1415 c
1059 1346 1104 1252 1104 1133 c
1104 1050 1080 980 1033 923 c
986 866 918 827 831 805 c

ce} _d
/nine{1303 0 129 -29 1159 1520 sc
225 31 m
225 215 l
276 191 327 173 379 160 c
431 147 482 141 532 141 c
665 141 767 186 837 275 c
908 365 948 501 958 684 c
919 627 870 583 811 552 c
752 521 686 506 614 506 c
465 506 346 551 259 641 c
172 732 129 855 129 1012 c
129 1165 174 1288 265 1381 c
356 1474 476 1520 627 1520 c
800 1520 931 1454 1022 1321 c
1113 1189 1159 997 1159 745 c
1159 510 1103 322 991 181 c
880 41 730 -29 541 -29 c
490 -29 439 -24 387 -14 c
335 -4 281 11 225 31 c

627 664 m
718 664 789 695 842 757 c
895 819 922 904 922 1012 c
922 1119 895 1204 842 1266 c
789 1329 718 1360 627 1360 c
536 1360 464 1329 411 1266 c
358 1204 332 1119 332 1012 c
332 904 358 819 411 757 c
464 695 536 664 627 664 c

ce} _d
end readonly def

/BuildGlyph {
 exch begin
 CharStrings exch
 2 copy known not {pop /.notdef} if
 true 3 1 roll get exec
 end
} _d

/BuildChar {
 1 index /Encoding get exch get
 1 index /BuildGlyph get exec
} _d

FontName currentdict end definefont pop
%!PS-Adobe-3.0 Resource-Font
%%Creator: Converted from TrueType to Type 3 by Matplotlib.
10 dict begin
/FontName /DejaVuSans-1 def
/PaintType 0 def
/FontMatrix [0.00048828125 0 0 0.00048828125 0 0] def
/FontBBox [-2090 -948 3673 2524] def
/FontType 3 def
/Encoding [/minus] def
/CharStrings 2 dict dup begin
/.notdef 0 def
/minus{1716 0 217 557 1499 727 sc
217 727 m
1499 727 l
1499 557 l
217 557 l
217 727 l

ce} _d
end readonly def

/BuildGlyph {
 exch begin
 CharStrings exch
 2 copy known not {pop /.notdef} if
 true 3 1 roll get exec
 end
} _d

/BuildChar {
 1 index /Encoding get exch get
 1 index /BuildGlyph get exec
} _d

FontName currentdict end definefont pop
end
%%EndProlog
mpldict begin
0 0 translate
0 0 115.2 86.4 rectclip
gsave
0 0 m
115.2 0 l
115.2 86.4 l
0 86.4 l
cl
1 setgray
fill
grestore
gsave
14.4 9.504 m
103.68 9.504 l
103.68 76.032 l
14.4 76.032 l
cl
1 setgray
fill
grestore
/p0_0 {
newpath
translate
0 -1.732051 m
0.459345 -1.732051 0.899939 -1.549551 1.224745 -1.224745 c
1.549551 -0.899939 1.732051 -0.459345 1.732051 0 c
1.732051 0.459345 1.549551 0.899939 1.224745 1.224745 c
0.899939 1.549551 0.459345 1.732051 0 1.732051 c
-0.459345 1.732051 -0.899939 1.549551 -1.224745 1.224745 c
-1.549551 0.899939 -1.732051 0.459345 -1.732051 0 c
-1.732051 -0.459345 -1.549551 -0.899939 -1.224745 -1.224745 c
-0.899939 -1.549551 -0.459345 -1.732051 0 -1.732051 c
cl

} bind def
1 setlinewidth
1 setlinejoin
0 setlinecap
[] 0 setdash
0.28 0.068 0.392 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
56.8275 50.9724 p0_0
gsave
fill
grestore
stroke
grestore
0.273 0.026 0.353 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
62.5783 31.5794 p0_0
gsave
fill
grestore
stroke
grestore
0.259 0.252 0.525 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
60.1921 63.0945 p0_0
gsave
fill
grestore
stroke
grestore
0.282 0.095 0.417 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
37.7019 36.8182 p0_0
gsave
fill
grestore
stroke
grestore
0.283 0.121 0.441 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
31.2985 41.5235 p0_0
gsave
fill
grestore
stroke
grestore
0.12 0.604 0.541 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
63.6415 59.2256 p0_0
gsave
fill
grestore
stroke
grestore
0.197 0.712 0.479 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
65.4797 34.9781 p0_0
gsave
fill
grestore
stroke
grestore
0.278 0.18 0.487 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
96.9592 47.9526 p0_0
gsave
fill
grestore
stroke
grestore
0.279 0.175 0.483 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
43.2271 62.0685 p0_0
gsave
fill
grestore
stroke
grestore
0.271 0.214 0.507 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
65.0482 52.8323 p0_0
gsave
fill
grestore
stroke
grestore
0.161 0.479 0.558 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
59.9878 52.5047 p0_0
gsave
fill
grestore
stroke
grestore
0.122 0.633 0.53 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
51.6318 67.6015 p0_0
gsave
fill
grestore
stroke
grestore
0.413 0.803 0.357 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
28.8369 61.127 p0_0
gsave
fill
grestore
stroke
grestore
0.135 0.659 0.518 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
24.7772 47.1755 p0_0
gsave
fill
grestore
stroke
grestore
0.254 0.265 0.53 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
97.9974 40.7263 p0_0
gsave
fill
grestore
stroke
grestore
0.352 0.783 0.393 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
45.9184 40.0066 p0_0
gsave
fill
grestore
stroke
grestore
0.164 0.471 0.558 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
99.6218 44.145 p0_0
gsave
fill
grestore
stroke
grestore
0.222 0.339 0.549 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
71.5318 70.3441 p0_0
gsave
fill
grestore
stroke
grestore
0.264 0.238 0.519 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
43.1086 34.1966 p0_0
gsave
fill
grestore
stroke
grestore
0.162 0.687 0.499 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
66.1395 55.008 p0_0
gsave
fill
grestore
stroke
grestore
0.267 0.005 0.329 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
24.2552 33.0698 p0_0
gsave
fill
grestore
stroke
grestore
0.128 0.567 0.551 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
46.482 63.8867 p0_0
gsave
fill
grestore
stroke
grestore
0.162 0.687 0.499 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
56.9771 58.8489 p0_0
gsave
fill
grestore
stroke
grestore
0.252 0.27 0.532 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
63.5164 73.008 p0_0
gsave
fill
grestore
stroke
grestore
0.267 0.005 0.329 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
45.8333 33.3237 p0_0
gsave
fill
grestore
stroke
grestore
0.214 0.722 0.47 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
34.9764 51.8794 p0_0
gsave
fill
grestore
stroke
grestore
0.22 0.343 0.549 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
53.4633 56.9738 p0_0
gsave
fill
grestore
stroke
grestore
0.282 0.146 0.462 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
59.087 28.9521 p0_0
gsave
fill
grestore
stroke
grestore
0.181 0.43 0.557 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
48.841 41.5583 p0_0
gsave
fill
grestore
stroke
grestore
0.184 0.422 0.557 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
53.8617 36.0795 p0_0
gsave
fill
grestore
stroke
grestore
0.304 0.765 0.42 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
77.8596 56.4089 p0_0
gsave
fill
grestore
stroke
grestore
0.122 0.633 0.53 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
85.5663 34.1539 p0_0
gsave
fill
grestore
stroke
grestore
0.239 0.301 0.541 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
85.6451 41.1734 p0_0
gsave
fill
grestore
stroke
grestore
0.126 0.571 0.55 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
40.9205 47.5749 p0_0
gsave
fill
grestore
stroke
grestore
0.468 0.819 0.324 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
49.1737 51.954 p0_0
gsave
fill
grestore
stroke
grestore
0.565 0.842 0.263 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
70.3745 36.8356 p0_0
gsave
fill
grestore
stroke
grestore
0.312 0.768 0.416 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
65.7266 32.0847 p0_0
gsave
fill
grestore
stroke
grestore
0.296 0.762 0.424 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
91.0799 40.7896 p0_0
gsave
fill
grestore
stroke
grestore
0.71 0.869 0.169 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
57.016 54.3029 p0_0
gsave
fill
grestore
stroke
grestore
0.278 0.056 0.381 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
77.7731 55.6808 p0_0
gsave
fill
grestore
stroke
grestore
0.268 0.224 0.512 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
47.4351 62.0871 p0_0
gsave
fill
grestore
stroke
grestore
0.182 0.426 0.557 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
44.3547 42.222 p0_0
gsave
fill
grestore
stroke
grestore
0.145 0.519 0.557 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
50.4134 70.3937 p0_0
gsave
fill
grestore
stroke
grestore
0.13 0.56 0.552 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
82.0904 18.6266 p0_0
gsave
fill
grestore
stroke
grestore
0.274 0.752 0.437 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
18.4582 12.528 p0_0
gsave
fill
grestore
stroke
grestore
0.275 0.038 0.365 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
44.326 41.4257 p0_0
gsave
fill
grestore
stroke
grestore
0.268 0.224 0.512 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
32.2715 39.6439 p0_0
gsave
fill
grestore
stroke
grestore
0.132 0.552 0.553 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
53.4759 46.9134 p0_0
gsave
fill
grestore
stroke
grestore
0.282 0.09 0.412 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
74.2929 50.0011 p0_0
gsave
fill
grestore
stroke
grestore
0.955 0.901 0.118 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
68.5406 54.0497 p0_0
gsave
fill
grestore
stroke
grestore
0.153 0.497 0.558 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
67.8996 65.7654 p0_0
gsave
fill
grestore
stroke
grestore
0.119 0.611 0.539 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
28.3898 39.0445 p0_0
gsave
fill
grestore
stroke
grestore
0.378 0.792 0.378 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
65.2591 52.3627 p0_0
gsave
fill
grestore
stroke
grestore
0.576 0.845 0.256 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
87.8992 48.5824 p0_0
gsave
fill
grestore
stroke
grestore
0.413 0.803 0.357 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
64.4287 44.9976 p0_0
gsave
fill
grestore
stroke
grestore
0.135 0.659 0.518 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
85.1224 43.7503 p0_0
gsave
fill
grestore
stroke
grestore
0.752 0.875 0.143 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
32.0569 61.6842 p0_0
gsave
fill
grestore
stroke
grestore
0.546 0.838 0.276 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
62.9064 26.5975 p0_0
gsave
fill
grestore
stroke
grestore
0.241 0.296 0.54 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
79.5514 43.2208 p0_0
gsave
fill
grestore
stroke
grestore
0.699 0.867 0.176 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
54.9798 59.448 p0_0
gsave
fill
grestore
stroke
grestore
0.478 0.821 0.318 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
31.378 35.6509 p0_0
gsave
fill
grestore
stroke
grestore
0.131 0.556 0.552 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
26.5683 39.1894 p0_0
gsave
fill
grestore
stroke
grestore
0.187 0.415 0.557 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
36.7022 35.8163 p0_0
gsave
fill
grestore
stroke
grestore
0.234 0.314 0.544 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
54.7758 35.4442 p0_0
gsave
fill
grestore
stroke
grestore
0.668 0.862 0.196 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
32.7114 15.4619 p0_0
gsave
fill
grestore
stroke
grestore
0.162 0.687 0.499 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
42.1622 57.2901 p0_0
gsave
fill
grestore
stroke
grestore
0.15 0.677 0.507 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
29.2197 33.9501 p0_0
gsave
fill
grestore
stroke
grestore
0.993 0.906 0.144 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
41.0496 49.7186 p0_0
gsave
fill
grestore
stroke
grestore
0.264 0.238 0.519 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
51.5007 47.2223 p0_0
gsave
fill
grestore
stroke
grestore
0.304 0.765 0.42 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
49.6637 38.3968 p0_0
gsave
fill
grestore
stroke
grestore
0.162 0.475 0.558 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
55.4564 41.3474 p0_0
gsave
fill
grestore
stroke
grestore
0.876 0.891 0.095 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
65.4809 37.3676 p0_0
gsave
fill
grestore
stroke
grestore
0.866 0.89 0.096 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
78.5041 56.5226 p0_0
gsave
fill
grestore
stroke
grestore
0.12 0.604 0.541 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
59.6378 32.4709 p0_0
gsave
fill
grestore
stroke
grestore
0.194 0.399 0.556 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
21.6675 42.7784 p0_0
gsave
fill
grestore
stroke
grestore
0.282 0.151 0.465 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
70.7964 57.7609 p0_0
gsave
fill
grestore
stroke
grestore
0.273 0.205 0.502 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
44.1883 30.3639 p0_0
gsave
fill
grestore
stroke
grestore
0.267 0.005 0.329 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
69.5558 56.0756 p0_0
gsave
fill
grestore
stroke
grestore
0.121 0.596 0.544 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
51.5009 27.9081 p0_0
gsave
fill
grestore
stroke
grestore
0.275 0.038 0.365 setrgbcolor
gsave
14.4 9.504 89.28 66.528 rectclip
72.5711 52.4453 p0_0
gsave
fill
grestore
stroke
grestore
0.8 setlinewidth
0 setgray
gsave
/o {
gsave
newpath
translate
0.8 setlinewidth
1 setlinejoin

0 setlinecap

0 0 m
0 -3.5 l

gsave
0 setgray
fill
grestore
stroke
grestore
} bind def
56.2827 9.504 o
grestore
/DejaVuSans-0 10.000 selectfont
gsave

53.103 -5.09366 translate
0 rotate
0 0 m /zero glyphshow
grestore
gsave
/o {
gsave
newpath
translate
0.8 setlinewidth
1 setlinejoin

0 setlinecap

0 0 m
0 -3.5 l

gsave
0 setgray
fill
grestore
stroke
grestore
} bind def
99.0113 9.504 o
grestore
/DejaVuSans-0 10.000 selectfont
gsave

95.8316 -5.09366 translate
0 rotate
0 0 m /two glyphshow
grestore
gsave
/o {
gsave
newpath
translate
0.8 setlinewidth
1 setlinejoin

0 setlinecap

-0 0 m
-3.5 0 l

gsave
0 setgray
fill
grestore
stroke
grestore
} bind def
14.4 15.8413 o
grestore
/DejaVuSans-1 10.000 selectfont
gsave

-7.33437 12.0425 translate
0 rotate
0 0 m /minus glyphshow
grestore
/DejaVuSans-0 10.000 selectfont
gsave

-7.33437 12.0425 translate
0 rotate
8.375 0 m /two glyphshow
grestore
gsave
/o {
gsave
newpath
translate
0.8 setlinewidth
1 setlinejoin

0 setlinecap

-0 0 m
-3.5 0 l

gsave
0 setgray
fill
grestore
stroke
grestore
} bind def
14.4 44.9415 o
grestore
/DejaVuSans-0 10.000 selectfont
gsave

1.04063 41.1427 translate
0 rotate
0 0 m /zero glyphshow
grestore
gsave
/o {
gsave
newpath
translate
0.8 setlinewidth
1 setlinejoin

0 setlinecap

-0 0 m
-3.5 0 l

gsave
0 setgray
fill
grestore
stroke
grestore
} bind def
14.4 74.0417 o
grestore
/DejaVuSans-0 10.000 selectfont
gsave

1.04063 70.2429 translate
0 rotate
0 0 m /two glyphshow
grestore
0 setlinejoin
2 setlinecap
gsave
14.4 9.504 m
14.4 76.032 l
stroke
grestore
gsave
103.68 9.504 m
103.68 76.032 l
stroke
grestore
gsave
14.4 9.504 m
103.68 9.504 l
stroke
grestore
gsave
14.4 76.032 m
103.68 76.032 l
stroke
grestore
/DejaVuSans-0 12.000 selectfont
gsave

27.6728 82.032 translate
0 rotate
0 0 m /s glyphshow
6.25 0 m /a glyphshow
13.6094 0 m /m glyphshow
25.2969 0 m /p glyphshow
32.9219 0 m /l glyphshow
36.25 0 m /e glyphshow
43.6406 0 m /space glyphshow
47.4531 0 m /three glyphshow
55.0938 0 m /nine glyphshow
grestore

end
showpage
